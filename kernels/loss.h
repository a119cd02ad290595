// Cross-entropy kernels, straight from the logits of a contiguous [rows, classes] matrix.
//
// defines: cross_entropy_forward_cpu/cuda, cross_entropy_reduce_cpu/cuda,
//          cross_entropy_backward_cpu/cuda, cross_entropy_target_dist_cpu/cuda
//
// Logits are read in their own dtype (a bf16 matrix is never copied to f32). Targets are class
// indices of `index_dtype` (i64 or i32), one per row; a target equal to ignore_index marks a
// row that contributes nothing. "A" below is the accumulation type: float, or double when the
// logits are f64. With label smoothing eps (torch's definition), the target distribution of a
// row with target t is q = (1 - eps) * onehot(t) + eps / classes, and
//   lse[r]      = log(sum_c exp(x[r, c]))
//   row_loss[r] = lse - (1 - eps) * x[r, t] - eps * mean_c x[r, c]      (0 for ignored rows)
// forward:   writes row_loss (A) and lse (A).
// reduce:    out (dtype, one element) = sum of row_loss, divided for the mean by the number of
//            rows not ignored (by 1 when there are none, so the mean of nothing is 0); writes
//            inv_count (A, one element) = that divisor's reciprocal, for the backward.
// backward:  dlogits[r, c] = g_r * scale * (softmax(x[r])_c - q[r, c]), 0 on ignored rows, where
//            g_r = grad[r] (grad_per_row) or grad[0], and scale = *inv_count (or 1 if null).
// target_dist: dist[r, c] = q[r, c] (0 on ignored rows), valid[r] = 1 or 0; both in dtype.
//            The composite (twice-differentiable) backward builds on it.
// A target outside [0, classes) that is not ignore_index: the CPU kernels throw an error naming
// the value, its row and the class count; the CUDA kernels never read outside the row and
// give that row a NaN loss and NaN gradients (the error cannot be reported without a host
// synchronisation).
#pragma once

#include <cstdint>

#include "framework/core/dtype.h"

namespace tessera::kernels {

void cross_entropy_forward_cpu(DType dtype, DType index_dtype, const void* logits, const void* targets, int64_t rows,
                               int64_t classes, int64_t ignore_index, double smoothing, void* row_loss, void* lse);
void cross_entropy_reduce_cpu(DType dtype, DType index_dtype, const void* row_loss, const void* targets, int64_t rows,
                              int64_t ignore_index, bool mean, void* out, void* inv_count);
void cross_entropy_backward_cpu(DType dtype, DType index_dtype, const void* logits, const void* lse,
                                const void* targets, const void* grad, bool grad_per_row, const void* inv_count,
                                int64_t rows, int64_t classes, int64_t ignore_index, double smoothing, void* dlogits);
void cross_entropy_target_dist_cpu(DType dtype, DType index_dtype, const void* targets, int64_t rows, int64_t classes,
                                   int64_t ignore_index, double smoothing, void* dist, void* valid);

#ifdef TESSERA_WITH_CUDA
void cross_entropy_forward_cuda(DType dtype, DType index_dtype, const void* logits, const void* targets, int64_t rows,
                                int64_t classes, int64_t ignore_index, double smoothing, void* row_loss, void* lse,
                                void* stream);
void cross_entropy_reduce_cuda(DType dtype, DType index_dtype, const void* row_loss, const void* targets, int64_t rows,
                               int64_t ignore_index, bool mean, void* out, void* inv_count, void* stream);
void cross_entropy_backward_cuda(DType dtype, DType index_dtype, const void* logits, const void* lse,
                                 const void* targets, const void* grad, bool grad_per_row, const void* inv_count,
                                 int64_t rows, int64_t classes, int64_t ignore_index, double smoothing, void* dlogits,
                                 void* stream);
void cross_entropy_target_dist_cuda(DType dtype, DType index_dtype, const void* targets, int64_t rows,
                                    int64_t classes, int64_t ignore_index, double smoothing, void* dist, void* valid,
                                    void* stream);
#endif

}  // namespace tessera::kernels
