// Differentiable loss functions.
//
// defines: Reduction, cross_entropy, mse_loss, l1_loss, binary_cross_entropy_with_logits
//
// cross_entropy(logits, targets): logits [..., C] hold the classes in the LAST dimension
// (torch.nn.functional.cross_entropy takes them in dimension 1; for [N, C] logits the two
// agree), targets are class indices (i64 or i32) of shape [...]. Targets equal to
// ignore_index contribute nothing. With label smoothing eps the loss of a row is, as in torch,
//   (1 - eps) * (-log p[target]) + eps * mean over classes of (-log p[c]).
// Reduction::mean divides by the number of targets that are not ignored; when every target is
// ignored the mean is 0 (torch gives NaN) so a batch of padding cannot poison a run.
// Reduction::none returns per-target losses of shape [...] (0 where ignored). The result has
// the logits' dtype; everything inside is computed in float (double for f64). The op is fused:
// it reads the logits in their own dtype (no f32 copy of bf16 logits), saves the per-row
// logsumexp, and the backward recomputes softmax from the logits in one kernel. Under
// create_graph the backward is (softmax(logits) - smoothed one-hot) * g / count written with
// differentiable ops, so second derivatives work.
// A target outside [0, C) that is not ignore_index: on the CPU an error names the value, its
// position and C; on CUDA (where checking would need a host synchronisation) that row's loss
// and gradients are NaN, so the loss reads NaN; memory outside the row is never touched.
//
// mse_loss, l1_loss and binary_cross_entropy_with_logits take input and target of the same
// shape, dtype and device. binary_cross_entropy_with_logits uses the stable form
//   max(x, 0) - x * t + log(1 + exp(-|x|))
// and the backward (sigmoid(x) - t) * g (and -x * g for the targets), exact also at x = 0;
// targets are probabilities in [0, 1] (not checked: that would need a host synchronisation).
// All three support second derivatives.
#pragma once

#include <cstdint>

#include "framework/core/tensor.h"

namespace tessera {

enum class Reduction { mean, sum, none };

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100,
                     double label_smoothing = 0.0, Reduction reduction = Reduction::mean);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                        Reduction reduction = Reduction::mean);

}  // namespace tessera
