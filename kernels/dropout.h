// Fused dropout: the keep mask comes from Philox inside the kernel, so no mask is stored.
//
// defines: dropout_cpu, dropout_cuda
//
//   out[i] = keep(i) ? x[i] * scale : 0,   keep(i) = random_uniform_at(seed, offset, i) < keep_threshold
// with keep_threshold = float(1 - p) and scale = 1 / (1 - p) (computed in the accumulation type).
// Element i depends only on (seed, offset, i), so CPU and CUDA drop the same elements, and the
// backward pass regenerates the mask by calling the same kernel on the gradient.
#pragma once

#include <cstdint>

#include "framework/core/dtype.h"

namespace tessera::kernels {

void dropout_cpu(DType dtype, const void* x, void* out, int64_t n, float keep_threshold, double scale, uint64_t seed,
                 uint64_t offset);
#ifdef TESSERA_WITH_CUDA
void dropout_cuda(DType dtype, const void* x, void* out, int64_t n, float keep_threshold, double scale, uint64_t seed,
                  uint64_t offset, void* stream);
#endif

}  // namespace tessera::kernels
