// Differentiable normalisation of images over channels: batch norm (also with statistics over
// several replicas' batches) and group norm.
//
// defines: batch_norm, ReplicaSum, sync_batch_norm, group_norm
//
// x is [N, C, *] (any number of spatial dims, including none); weight and bias are [C] of x's
// dtype or undefined tensors (no affine transform).
//
// batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps,
//            num_batches_tracked) follows torch.nn.functional.batch_norm:
//  * training: normalise with the batch statistics of each channel (mean and biased variance
//    over N and the spatial dims); if running_mean/running_var ([C], any float dtype, on x's
//    device, contiguous) are given, they are updated in place without autograd,
//    running = (1 - momentum) * running + momentum * batch statistic, with the unbiased
//    variance, and num_batches_tracked (an i64 scalar), if given, is incremented — all on the
//    device, with no host synchronisation.
//  * not training: normalise with running_mean and running_var (required), which are not
//    changed.
// Statistics are computed in float (double for f64) also for bf16/f16 inputs. Differentiable
// in x, weight and bias (the running statistics are constants). The backward is one fused
// kernel; under create_graph it is rebuilt from differentiable ops, so second derivatives work.
//
// sync_batch_norm(x, weight, bias, running_mean, running_var, momentum, eps,
//                 num_batches_tracked, replica_sum) is batch_norm in training mode with the
// statistics of the union of the batches of all replicas (data-parallel ranks), as
// torch.nn.SyncBatchNorm: each replica stacks its per-channel sum, sum of squares and value
// count into one [3, C] tensor (in float, double for f64), `replica_sum` adds those tensors
// over the replicas (one collective), and every replica normalises its own x with
// mean = sum / count and the biased variance sumsq / count - mean^2, then updates the running
// statistics as batch_norm does (unbiased variance, count / (count - 1)) — identically on
// every replica, since all see the same totals. `replica_sum` must be differentiable: its
// backward sums the incoming gradient over the replicas (dist::all_reduce_sum; ops knows
// nothing of communication). Everything else is composed of differentiable ops, so
// derivatives of any order come from autograd. With a replica sum that returns its argument
// it is batch_norm(training=true) up to rounding. Every replica needs at least one value per
// channel; the total count must exceed one (not checked: that would need a host
// synchronisation). The variance is E[x^2] - E[x]^2, which loses relative precision
// ~ 1e-7 * mean^2 / var in float: fine for activations, not for data far from zero mean.
//
// group_norm(x, num_groups, weight, bias, eps) follows torch.nn.functional.group_norm: the C
// channels form num_groups groups of consecutive channels, each (image, group) is normalised
// over its channels and spatial positions, then weight and bias apply per channel. It is
// layer_norm over [N, num_groups, C/num_groups * spatial] rows (the fused row kernels) and a
// broadcast affine transform, so it is differentiable to second order.
#pragma once

#include <cstdint>
#include <functional>

#include "framework/core/tensor.h"

namespace tessera {

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5,
                  const Tensor& num_batches_tracked = Tensor());

// Sums a tensor over the replicas, differentiably (see sync_batch_norm).
using ReplicaSum = std::function<Tensor(const Tensor&)>;

Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, double momentum, double eps, const Tensor& num_batches_tracked,
                       const ReplicaSum& replica_sum);

Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                  double eps = 1e-5);

}  // namespace tessera
