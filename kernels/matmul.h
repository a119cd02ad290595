// Matrix products: C[b] = alpha * op(A[b]) op(B[b]) + beta * C[b], row-major, strided batches.
//
// defines: GemmArgs, gemm_cpu (OpenBLAS), gemm_cuda (cuBLASLt; cuBLAS for f64)
//
// Row-major: A is m x k (k x m stored when trans_a), B is k x n (n x k stored when trans_b),
// C is m x n; lda/ldb/ldc are row strides in elements, stride_* the distance between batch
// items (0 broadcasts one matrix to every batch item). bf16/f16 inputs accumulate in f32
// (tensor cores on CUDA); f32 is computed in full f32 (no TF32) so CPU and CUDA agree closely.
// Optional epilogue on CUDA: bias (length n, added to every row), then GELU.
#pragma once

#include <cstdint>

#include "framework/core/dtype.h"

namespace tessera::kernels {

struct GemmArgs {
  DType dtype = DType::f32;
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  const void* a = nullptr;
  int64_t lda = 0, stride_a = 0;
  const void* b = nullptr;
  int64_t ldb = 0, stride_b = 0;
  void* c = nullptr;
  int64_t ldc = 0, stride_c = 0;
  int64_t batch = 1;
  float alpha = 1.0f, beta = 0.0f;
};

void gemm_cpu(const GemmArgs& args);
#ifdef TESSERA_WITH_CUDA
void gemm_cuda(const GemmArgs& args, void* stream);
#endif

}  // namespace tessera::kernels
