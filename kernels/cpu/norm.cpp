// CPU layer norm and RMS norm (kernels/norm.h), the reference for kernels/cuda/norm.cu.
//
// Rows are independent and each is handled by one thread, so the per-row results do not
// depend on the thread count. Statistics use two passes (mean, then the mean of squared
// deviations), which stays accurate when |mean| is much larger than the spread. The
// weight/bias gradients are column sums over rows: rows are cut into chunks whose size depends
// only on the sizes, each chunk sums its rows in order into its own partial row, and the
// partial rows are then added in chunk order.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/common.h"
#include "kernels/norm.h"

namespace tessera::kernels {
namespace {

// Rows per chunk of the weight-gradient sum: at least 32, and at most 256 chunks in all.
int64_t rows_per_chunk(int64_t rows) { return std::max<int64_t>(32, (rows + 255) / 256); }

template <typename T>
void forward_typed(bool rms, const T* x, const T* weight, const T* bias, T* y, cpu::AccType<T>* mean_out,
                   cpu::AccType<T>* rstd_out, int64_t rows, int64_t cols, double eps) {
  using A = cpu::AccType<T>;
  const A inv_cols = A(1) / static_cast<A>(cols);
  cpu::parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * cols;
      T* yr = y + r * cols;
      A mean = 0;
      if (!rms) {
        for (int64_t c = 0; c < cols; ++c) mean += cpu::load(xr[c]);
        mean *= inv_cols;
      }
      A squares = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const A d = cpu::load(xr[c]) - mean;
        squares += d * d;
      }
      const A rstd = A(1) / std::sqrt(squares * inv_cols + static_cast<A>(eps));
      for (int64_t c = 0; c < cols; ++c) {
        A v = (cpu::load(xr[c]) - mean) * rstd;
        if (weight) v *= cpu::load(weight[c]);
        if (bias) v += cpu::load(bias[c]);
        yr[c] = cpu::store<T>(v);
      }
      if (mean_out) mean_out[r] = mean;
      rstd_out[r] = rstd;
    }
  }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(cols, 1)));
}

template <typename T>
void backward_typed(bool rms, const T* dy, const T* x, const T* weight, const cpu::AccType<T>* mean_in,
                    const cpu::AccType<T>* rstd_in, T* dx, T* dweight, T* dbias, int64_t rows, int64_t cols) {
  using A = cpu::AccType<T>;
  const A inv_cols = A(1) / static_cast<A>(cols);
  const bool column_sums = dweight || dbias;
  const int64_t chunk = rows_per_chunk(rows);
  const int64_t chunks = (rows + chunk - 1) / chunk;
  // partial[k] holds chunk k's sums: dweight in [0, cols), dbias in [cols, 2 cols).
  std::vector<A> partial(column_sums ? static_cast<size_t>(chunks * 2 * cols) : 0, A(0));
  cpu::parallel_for(chunks, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      A* pw = column_sums ? partial.data() + k * 2 * cols : nullptr;
      A* pb = column_sums ? pw + cols : nullptr;
      for (int64_t r = k * chunk; r < std::min(rows, (k + 1) * chunk); ++r) {
        const T* xr = x + r * cols;
        const T* dyr = dy + r * cols;
        const A mean = rms ? A(0) : mean_in[r];
        const A rstd = rstd_in[r];
        if (dx) {
          A sum_wdy = 0, sum_wdy_xhat = 0;
          for (int64_t c = 0; c < cols; ++c) {
            const A wdy = cpu::load(dyr[c]) * (weight ? cpu::load(weight[c]) : A(1));
            sum_wdy += wdy;
            sum_wdy_xhat += wdy * (cpu::load(xr[c]) - mean) * rstd;
          }
          const A mean_wdy = rms ? A(0) : sum_wdy * inv_cols;
          const A mean_wdy_xhat = sum_wdy_xhat * inv_cols;
          T* dxr = dx + r * cols;
          for (int64_t c = 0; c < cols; ++c) {
            const A wdy = cpu::load(dyr[c]) * (weight ? cpu::load(weight[c]) : A(1));
            const A xhat = (cpu::load(xr[c]) - mean) * rstd;
            dxr[c] = cpu::store<T>(rstd * (wdy - mean_wdy - xhat * mean_wdy_xhat));
          }
        }
        if (column_sums) {
          for (int64_t c = 0; c < cols; ++c) {
            const A g = cpu::load(dyr[c]);
            pw[c] += g * (cpu::load(xr[c]) - mean) * rstd;
            pb[c] += g;
          }
        }
      }
    }
  }, 1);
  if (!column_sums) return;
  cpu::parallel_for(cols, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      A w = 0, b = 0;
      for (int64_t k = 0; k < chunks; ++k) {
        w += partial[k * 2 * cols + c];
        b += partial[k * 2 * cols + cols + c];
      }
      if (dweight) dweight[c] = cpu::store<T>(w);
      if (dbias) dbias[c] = cpu::store<T>(b);
    }
  }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(chunks, 1)));
}

}  // namespace

void norm_forward_cpu(DType dtype, bool rms, const void* x, const void* weight, const void* bias, void* y,
                      void* mean, void* rstd, int64_t rows, int64_t cols, double eps) {
  if (rows == 0 || cols == 0) return;
  float_dtype_switch(dtype, rms ? "rms_norm" : "layer_norm", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = cpu::AccType<T>;
    forward_typed<T>(rms, static_cast<const T*>(x), static_cast<const T*>(weight), static_cast<const T*>(bias),
                     static_cast<T*>(y), static_cast<A*>(mean), static_cast<A*>(rstd), rows, cols, eps);
  });
}

void norm_backward_cpu(DType dtype, bool rms, const void* dy, const void* x, const void* weight, const void* mean,
                       const void* rstd, void* dx, void* dweight, void* dbias, int64_t rows, int64_t cols) {
  if (cols == 0) return;
  float_dtype_switch(dtype, rms ? "rms_norm backward" : "layer_norm backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = cpu::AccType<T>;
    backward_typed<T>(rms, static_cast<const T*>(dy), static_cast<const T*>(x), static_cast<const T*>(weight),
                      static_cast<const A*>(mean), static_cast<const A*>(rstd), static_cast<T*>(dx),
                      static_cast<T*>(dweight), static_cast<T*>(dbias), rows, cols);
  });
}

}  // namespace tessera::kernels
