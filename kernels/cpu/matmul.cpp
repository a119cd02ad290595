// CPU matrix products through OpenBLAS (kernels/matmul.h). bf16/f16 operands are widened to
// f32 per batch item, multiplied by sgemm, and rounded back.
#include <cblas.h>

#include <vector>

#include "kernels/cpu/common.h"
#include "kernels/matmul.h"

namespace tessera::kernels {
namespace {

template <typename T>
void widen(const T* src, int64_t rows, int64_t cols, int64_t ld, std::vector<float>& dst) {
  dst.resize(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[r * cols + c] = cpu::load(src[r * ld + c]);
}

}  // namespace

void gemm_cpu(const GemmArgs& g) {
  if (g.m == 0 || g.n == 0) return;
  const auto ta = g.trans_a ? CblasTrans : CblasNoTrans;
  const auto tb = g.trans_b ? CblasTrans : CblasNoTrans;
  switch (g.dtype) {
    case DType::f32:
      for (int64_t i = 0; i < g.batch; ++i)
        cblas_sgemm(CblasRowMajor, ta, tb, g.m, g.n, g.k, g.alpha, static_cast<const float*>(g.a) + i * g.stride_a, g.lda,
                    static_cast<const float*>(g.b) + i * g.stride_b, g.ldb, g.beta,
                    static_cast<float*>(g.c) + i * g.stride_c, g.ldc);
      return;
    case DType::f64:
      for (int64_t i = 0; i < g.batch; ++i)
        cblas_dgemm(CblasRowMajor, ta, tb, g.m, g.n, g.k, g.alpha, static_cast<const double*>(g.a) + i * g.stride_a,
                    g.lda, static_cast<const double*>(g.b) + i * g.stride_b, g.ldb, g.beta,
                    static_cast<double*>(g.c) + i * g.stride_c, g.ldc);
      return;
    default:
      break;
  }
  float_dtype_switch(g.dtype, "matmul", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if constexpr (cpu::is_half_v<T>) {
      std::vector<float> a, b, c;
      const int64_t a_rows = g.trans_a ? g.k : g.m, a_cols = g.trans_a ? g.m : g.k;
      const int64_t b_rows = g.trans_b ? g.n : g.k, b_cols = g.trans_b ? g.k : g.n;
      for (int64_t i = 0; i < g.batch; ++i) {
        widen(static_cast<const T*>(g.a) + i * g.stride_a, a_rows, a_cols, g.lda, a);
        widen(static_cast<const T*>(g.b) + i * g.stride_b, b_rows, b_cols, g.ldb, b);
        T* out = static_cast<T*>(g.c) + i * g.stride_c;
        if (g.beta != 0.0f) {
          widen(out, g.m, g.n, g.ldc, c);
        } else {
          c.assign(static_cast<size_t>(g.m * g.n), 0.0f);
        }
        cblas_sgemm(CblasRowMajor, ta, tb, g.m, g.n, g.k, g.alpha, a.data(), a_cols, b.data(), b_cols, g.beta, c.data(),
                    g.n);
        for (int64_t r = 0; r < g.m; ++r)
          for (int64_t col = 0; col < g.n; ++col) out[r * g.ldc + col] = cpu::store<T>(c[r * g.n + col]);
      }
    }
  });
}

}  // namespace tessera::kernels
