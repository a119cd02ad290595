// Mixed-precision helpers: unscaling gradients and detecting non-finite values in one pass.
//
// defines: unscale_check_cpu, unscale_check_cuda
//
// For every tensor, in place: x[i] = x[i] * inv_scale, and *found_inf = 1.0f if any result is
// not finite (inf or NaN). found_inf is only ever set, never cleared (the caller zeroes it
// before), so the flag does not depend on the order or the number of threads; it lives in the
// tensors' memory space (device memory for CUDA). Arithmetic in float (double for f64), one
// rounding per element. On CUDA one launch covers up to kMaxUnscaleTensors tensors.
#pragma once

#include <cstdint>

#include "framework/core/dtype.h"

namespace tessera::kernels {

constexpr int kMaxUnscaleTensors = 512;

void unscale_check_cpu(DType dtype, void* const* data, const int64_t* numels, int64_t count, double inv_scale,
                       float* found_inf);

#ifdef TESSERA_WITH_CUDA
void unscale_check_cuda(DType dtype, void* const* data, const int64_t* numels, int64_t count, double inv_scale,
                        float* found_inf, void* stream);
#endif

}  // namespace tessera::kernels
