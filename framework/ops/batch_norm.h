// Differentiable normalisation of images over channels: batch norm and group norm.
//
// defines: batch_norm, group_norm
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
// group_norm(x, num_groups, weight, bias, eps) follows torch.nn.functional.group_norm: the C
// channels form num_groups groups of consecutive channels, each (image, group) is normalised
// over its channels and spatial positions, then weight and bias apply per channel. It is
// layer_norm over [N, num_groups, C/num_groups * spatial] rows (the fused row kernels) and a
// broadcast affine transform, so it is differentiable to second order.
#pragma once

#include <cstdint>

#include "framework/core/tensor.h"

namespace tessera {

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5,
                  const Tensor& num_batches_tracked = Tensor());

Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                  double eps = 1e-5);

}  // namespace tessera
