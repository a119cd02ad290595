// Fused optimizer updates and global-norm gradient clipping over lists of tensors.
//
// defines: OptimTensor, SgdConfig, AdamConfig, RmspropConfig, sgd_update_*, adam_update_*,
//          rmsprop_update_*, kNormChunk, norm_chunk_count, grad_norm_partials_*,
//          clip_coefficient_*, scale_by_*   (* = cpu, cuda)
//
// An update takes every parameter of one dtype at once: an array of OptimTensor (parameter,
// gradient of the same dtype, optimizer state buffers, all contiguous) and the
// hyper-parameters as host scalars. State buffers are float (double for f64 parameters) and
// the arithmetic is done in that type; the parameter is rounded to its dtype once per step.
// On CUDA, one launch updates all the tensors: their pointers, sizes and per-tensor scalars
// travel in the kernel's argument struct (up to kMaxTensorsPerLaunch tensors per launch; a
// longer list takes one launch per that many), each thread block owns one fixed-size chunk of
// one tensor, so the launch shape depends only on the sizes. The per-element formulas are in
// kernels/optim_math.h, shared by both devices, and follow torch.optim (see there).
//
// Clipping by global norm, without any host synchronisation:
//   1. grad_norm_partials: one partial sum of squares (double) per kNormChunk elements of each
//      tensor, chunks numbered tensor by tensor (norm_chunk_count gives how many);
//   2. clip_coefficient: norm = sqrt(sum of the partials, added in order), written as f32, and
//      coef = min(1, max_norm / (norm + 1e-6)) (f32);
//   3. scale_by: every tensor *= coef, read from device memory.
// The order of additions depends only on the sizes, so the norm is reproducible.
#pragma once

#include <cstdint>

#include "framework/core/dtype.h"

namespace tessera::kernels {

struct OptimTensor {
  void* param = nullptr;
  const void* grad = nullptr;
  void* state[3] = {nullptr, nullptr, nullptr};  // meaning per optimizer (see the configs)
  int64_t numel = 0;
  int64_t step = 0;  // updates of this tensor including the current one (1 on the first)
};

// state[0]: momentum buffer (used when momentum != 0; set to the gradient on step 1).
struct SgdConfig {
  double lr = 0.0, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false;
};

// state[0]: exp_avg, state[1]: exp_avg_sq. decoupled_weight_decay: AdamW.
struct AdamConfig {
  double lr = 0.0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool decoupled_weight_decay = false;
};

// state[0]: square_avg, state[1]: momentum buffer (momentum > 0), state[2]: grad_avg (centered).
struct RmspropConfig {
  double lr = 0.0, alpha = 0.99, eps = 1e-8, weight_decay = 0.0, momentum = 0.0;
  bool centered = false;
};

// Tensors per CUDA launch (bounded by the 32 KiB kernel-argument limit of sm_70 and newer).
constexpr int kMaxTensorsPerLaunch = 320;
// Elements per partial sum of the gradient norm.
constexpr int64_t kNormChunk = 16384;
// Number of partial sums grad_norm_partials writes for tensors of these sizes.
int64_t norm_chunk_count(const int64_t* numels, int64_t count);

void sgd_update_cpu(DType dtype, const OptimTensor* tensors, int64_t count, const SgdConfig& config);
void adam_update_cpu(DType dtype, const OptimTensor* tensors, int64_t count, const AdamConfig& config);
void rmsprop_update_cpu(DType dtype, const OptimTensor* tensors, int64_t count, const RmspropConfig& config);
// data[i] holds numels[i] elements of `dtype`; writes norm_chunk_count(numels, count) doubles.
void grad_norm_partials_cpu(DType dtype, const void* const* data, const int64_t* numels, int64_t count,
                            double* partials);
void clip_coefficient_cpu(const double* partials, int64_t count, double max_norm, float* norm, float* coef);
void scale_by_cpu(DType dtype, void* const* data, const int64_t* numels, int64_t count, const float* coef);

#ifdef TESSERA_WITH_CUDA
void sgd_update_cuda(DType dtype, const OptimTensor* tensors, int64_t count, const SgdConfig& config, void* stream);
void adam_update_cuda(DType dtype, const OptimTensor* tensors, int64_t count, const AdamConfig& config, void* stream);
void rmsprop_update_cuda(DType dtype, const OptimTensor* tensors, int64_t count, const RmspropConfig& config,
                         void* stream);
void grad_norm_partials_cuda(DType dtype, const void* const* data, const int64_t* numels, int64_t count,
                             double* partials, void* stream);
void clip_coefficient_cuda(const double* partials, int64_t count, double max_norm, float* norm, float* coef,
                           void* stream);
void scale_by_cuda(DType dtype, void* const* data, const int64_t* numels, int64_t count, const float* coef,
                   void* stream);
#endif

}  // namespace tessera::kernels
