// Batch normalisation over the batch and spatial dims of a contiguous [N, C, S] tensor
// (S = the product of the spatial dims), forward and fused backward.
//
// defines: BatchNormForwardArgs, BatchNormBackwardArgs, batch_norm_forward_cpu/cuda,
//          batch_norm_backward_cpu/cuda
//
// Forward with batch statistics (use_batch_stats): per channel c over its N*S values,
//   mean, var (biased), rstd = 1/sqrt(var + eps),  y = (x - mean) * rstd * weight + bias,
// and, when running_mean/running_var are given, in place (torch.nn.BatchNorm's update):
//   running_mean = (1 - momentum) * running_mean + momentum * mean
//   running_var  = (1 - momentum) * running_var  + momentum * var * n / (n - 1)   (unbiased)
// and num_batches_tracked (if given) += 1. Without batch statistics (eval mode) mean and var
// are read from running_mean/running_var and nothing is updated. Either way the forward
// writes the mean and rstd it used ([C], accumulation type: float, double for f64) for the
// backward. weight and bias ([C], x's dtype) may be null; the running statistics may have
// their own floating dtype (running_dtype).
//
// Backward, from dy and the saved mean/rstd, with xhat = (x - mean) * rstd:
//   dbias = sum(dy), dweight = sum(dy * xhat)   (over N and S, per channel)
//   dx = weight * rstd * (dy - dbias/n - xhat * dweight/n)   with batch statistics,
//   dx = weight * rstd * dy                                  without (eval mode).
// Any of dx, dweight, dbias may be null. Statistics accumulate in float (double for f64).
// Reductions are deterministic on both devices: a fixed number of partial sums per channel
// (a function of the sizes only) combined in a fixed order, no atomics.
#pragma once

#include <cstdint>

#include "framework/core/dtype.h"

namespace tessera::kernels {

struct BatchNormForwardArgs {
  DType dtype = DType::f32;
  int64_t batch = 0, channels = 0, spatial = 0;
  const void* x = nullptr;
  const void* weight = nullptr;
  const void* bias = nullptr;
  void* y = nullptr;
  void* mean = nullptr;  // [C] accumulation type, written
  void* rstd = nullptr;  // [C] accumulation type, written
  bool use_batch_stats = true;
  double eps = 1e-5, momentum = 0.1;
  void* running_mean = nullptr;  // [C] running_dtype, or null
  void* running_var = nullptr;
  DType running_dtype = DType::f32;
  int64_t* num_batches_tracked = nullptr;  // one i64, or null
};

struct BatchNormBackwardArgs {
  DType dtype = DType::f32;
  int64_t batch = 0, channels = 0, spatial = 0;
  const void* dy = nullptr;
  const void* x = nullptr;
  const void* weight = nullptr;
  const void* mean = nullptr;  // [C] accumulation type, from the forward
  const void* rstd = nullptr;
  bool use_batch_stats = true;
  void* dx = nullptr;
  void* dweight = nullptr;  // [C] in dtype
  void* dbias = nullptr;
};

void batch_norm_forward_cpu(const BatchNormForwardArgs& args);
void batch_norm_backward_cpu(const BatchNormBackwardArgs& args);
#ifdef TESSERA_WITH_CUDA
void batch_norm_forward_cuda(const BatchNormForwardArgs& args, void* stream);
void batch_norm_backward_cuda(const BatchNormBackwardArgs& args, void* stream);
#endif

}  // namespace tessera::kernels
