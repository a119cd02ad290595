// Differentiable normalisation over the last dimension: layer norm and RMS norm.
//
// defines: layer_norm, rms_norm
//
// Both normalise each row of x's last dimension D; weight and bias are [D] tensors of x's
// dtype, or undefined tensors for no affine transform. (torch.nn.functional.layer_norm can
// normalise over several trailing dims; these always use exactly the last one.)
//   layer_norm: y = (x - mean) / sqrt(var + eps) * weight + bias     (var biased, as torch)
//   rms_norm:   y = x / sqrt(mean(x^2) + eps) * weight
// Statistics and sums are computed in float (double for f64) also for bf16/f16 inputs; the
// forward saves the per-row mean and 1/sqrt(var + eps) for the backward. The backward is one
// fused kernel (dx, dweight, dbias; deterministic column sums). Under create_graph it is
// written with differentiable ops instead, so second derivatives are exact.
#pragma once

#include "framework/core/tensor.h"

namespace tessera {

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-6);

}  // namespace tessera
