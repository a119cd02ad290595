// Softmax and log-softmax over the middle axis of a contiguous [outer, n, inner] view,
// forward and backward.
//
// defines: softmax_forward_cpu/cuda, softmax_backward_cpu/cuda
//
// forward:  y = exp(x - max) / sum(exp(x - max))        (log: y = x - max - log(sum(...)))
// backward: dx = y * (dy - sum(dy * y))                  (log: dx = dy - exp(y) * sum(dy))
// where max and sums run over the n axis. inner == 1 (softmax over the last dimension) is the
// fast path: a group of threads per row. inner > 1 (any other dimension) runs one thread per
// (outer, inner) column, so no transpose is needed. Sums accumulate in float (double for f64).
#pragma once

#include <cstdint>

#include "framework/core/dtype.h"

namespace tessera::kernels {

void softmax_forward_cpu(DType dtype, bool log, const void* x, void* y, int64_t outer, int64_t n, int64_t inner);
void softmax_backward_cpu(DType dtype, bool log, const void* y, const void* dy, void* dx, int64_t outer, int64_t n,
                          int64_t inner);

#ifdef TESSERA_WITH_CUDA
void softmax_forward_cuda(DType dtype, bool log, const void* x, void* y, int64_t outer, int64_t n, int64_t inner,
                          void* stream);
void softmax_backward_cuda(DType dtype, bool log, const void* y, const void* dy, void* dx, int64_t outer, int64_t n,
                           int64_t inner, void* stream);
#endif

}  // namespace tessera::kernels
