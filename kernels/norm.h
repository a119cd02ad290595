// Row normalisation kernels: layer norm and RMS norm over the last dimension of a contiguous
// [rows, cols] matrix, forward and fused backward.
//
// defines: norm_forward_cpu/cuda, norm_backward_cpu/cuda
//
// layer norm (rms == false):  y = (x - mean) * rstd * weight + bias,  rstd = 1/sqrt(var + eps)
// RMS norm   (rms == true):   y = x * rstd * weight,                  rstd = 1/sqrt(mean(x^2) + eps)
// (var is the biased variance, as in torch.nn.LayerNorm.) weight and bias are [cols] or
// nullptr (no affine). The forward writes the per-row statistics `mean` (layer norm only;
// nullptr for RMS) and `rstd` in the accumulation type: float, or double when dtype is f64.
//
// The backward takes dy and the saved statistics and writes, in one pass over the rows,
//   dx = rstd * (w*dy - mean(w*dy) - xhat * mean(w*dy * xhat))     (RMS: without mean(w*dy))
//   dweight = sum over rows of dy * xhat,  dbias = sum over rows of dy
// where xhat = (x - mean) * rstd. Any of dx, dweight, dbias may be nullptr (not wanted).
// The column sums are deterministic: rows are split into a number of groups that depends
// only on the sizes, each group sums its rows in order into a partial row, and the partial
// rows are added in order. No float atomics.
#pragma once

#include <cstdint>

#include "framework/core/dtype.h"

namespace tessera::kernels {

void norm_forward_cpu(DType dtype, bool rms, const void* x, const void* weight, const void* bias, void* y,
                      void* mean, void* rstd, int64_t rows, int64_t cols, double eps);
void norm_backward_cpu(DType dtype, bool rms, const void* dy, const void* x, const void* weight, const void* mean,
                       const void* rstd, void* dx, void* dweight, void* dbias, int64_t rows, int64_t cols);

#ifdef TESSERA_WITH_CUDA
void norm_forward_cuda(DType dtype, bool rms, const void* x, const void* weight, const void* bias, void* y,
                       void* mean, void* rstd, int64_t rows, int64_t cols, double eps, void* stream);
void norm_backward_cuda(DType dtype, bool rms, const void* dy, const void* x, const void* weight, const void* mean,
                        const void* rstd, void* dx, void* dweight, void* dbias, int64_t rows, int64_t cols,
                        void* stream);
#endif

}  // namespace tessera::kernels
