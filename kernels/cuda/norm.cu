// CUDA layer norm and RMS norm (kernels/norm.h); kernels/cpu/norm.cpp is the reference.
//
// Forward: a group of threads per row (kernels/cuda/rows.cuh). When the row fits in
// registers the group reads it once (16-byte vectors when the row length and pointers allow),
// reduces the mean, then the mean of squared deviations from the registers, and writes y;
// longer rows are read again for each pass. Statistics accumulate in float (double for f64).
//
// Backward: the grid has a fixed number of row groups that depends only on rows and cols.
// Each row group walks its rows in order (row, row + groups, ...), writes dx for each, and
// accumulates dy*xhat and dy for the columns its threads own, in registers when the row fits
// there and otherwise in its own partial row in scratch memory. A second kernel adds the
// partial rows column by column in a fixed order: deterministic weight gradients with no
// atomics.
#include <algorithm>

#include "framework/core/allocator.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/rows.cuh"
#include "kernels/norm.h"

namespace tessera::kernels {
namespace {

// Math through std:: so that no tessera function of the same name can hide it.
using std::sqrt;
using cuda::AccType;
using cuda::load;
using cuda::load_vec;
using cuda::store;
using cuda::store_vec;

constexpr int kNormMaxThreadsPerRow = 256;
// At most this many partial rows (of floats) per column-sum buffer, and at most this many
// floats in one buffer.
constexpr int64_t kMaxPartialRows = 1024;
constexpr int64_t kMaxPartialFloats = int64_t{4} << 20;

template <typename T, int N, int Cache>
__global__ void norm_forward_kernel(const T* __restrict__ x, const T* __restrict__ weight, const T* __restrict__ bias,
                                    T* __restrict__ y, AccType<T>* __restrict__ mean_out,
                                    AccType<T>* __restrict__ rstd_out, int64_t rows, int64_t cols, AccType<T> eps,
                                    bool rms) {
  using A = AccType<T>;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool active = row < rows;
  const int64_t vectors = cols / N;
  const T* xr = x + (active ? row : 0) * cols;
  T* yr = y + (active ? row : 0) * cols;
  const A inv_cols = A(1) / static_cast<A>(cols);
  const cuda::SumOp sum_op;

  auto write = [&](int64_t v, const A (&xv)[N], A mean, A rstd) {
    A out[N], w[N], b[N];
    if (weight) load_vec<T, N>(weight + v * N, w);
    if (bias) load_vec<T, N>(bias + v * N, b);
#pragma unroll
    for (int j = 0; j < N; ++j) {
      out[j] = (xv[j] - mean) * rstd;
      if (weight) out[j] *= w[j];
      if (bias) out[j] += b[j];
    }
    store_vec<T, N>(yr + v * N, out);
  };

  A mean = 0, rstd = 0;
  if constexpr (Cache > 0) {
    A cache[Cache][N];
    A sum = 0;
#pragma unroll
    for (int k = 0; k < Cache; ++k) {
      const int64_t v = k * static_cast<int64_t>(blockDim.x) + threadIdx.x;
      if (active && v < vectors) {
        load_vec<T, N>(xr + v * N, cache[k]);
      } else {
#pragma unroll
        for (int j = 0; j < N; ++j) cache[k][j] = A(0);
      }
#pragma unroll
      for (int j = 0; j < N; ++j) sum += cache[k][j];
    }
    if (!rms) mean = cuda::row_allreduce(sum, sum_op) * inv_cols;
    A squares = 0;
#pragma unroll
    for (int k = 0; k < Cache; ++k) {
      const int64_t v = k * static_cast<int64_t>(blockDim.x) + threadIdx.x;
      if (v < vectors) {
#pragma unroll
        for (int j = 0; j < N; ++j) squares += (cache[k][j] - mean) * (cache[k][j] - mean);
      }
    }
    rstd = A(1) / sqrt(cuda::row_allreduce(squares, sum_op) * inv_cols + eps);
#pragma unroll
    for (int k = 0; k < Cache; ++k) {
      const int64_t v = k * static_cast<int64_t>(blockDim.x) + threadIdx.x;
      if (active && v < vectors) write(v, cache[k], mean, rstd);
    }
  } else {
    A xv[N];
    if (!rms) {
      A sum = 0;
      for (int64_t v = threadIdx.x; active && v < vectors; v += blockDim.x) {
        load_vec<T, N>(xr + v * N, xv);
#pragma unroll
        for (int j = 0; j < N; ++j) sum += xv[j];
      }
      mean = cuda::row_allreduce(sum, sum_op) * inv_cols;
    }
    A squares = 0;
    for (int64_t v = threadIdx.x; active && v < vectors; v += blockDim.x) {
      load_vec<T, N>(xr + v * N, xv);
#pragma unroll
      for (int j = 0; j < N; ++j) squares += (xv[j] - mean) * (xv[j] - mean);
    }
    rstd = A(1) / sqrt(cuda::row_allreduce(squares, sum_op) * inv_cols + eps);
    for (int64_t v = threadIdx.x; active && v < vectors; v += blockDim.x) {
      load_vec<T, N>(xr + v * N, xv);
      write(v, xv, mean, rstd);
    }
  }
  if (active && threadIdx.x == 0) {
    if (mean_out) mean_out[row] = mean;
    rstd_out[row] = rstd;
  }
}

// Grid: `groups` blocks of rows_per_block row groups. Row group p = blockIdx.x * blockDim.y +
// threadIdx.y handles rows p, p + P, p + 2P, ... (P = all row groups) and owns partial row p.
template <typename T, int N, int Cache>
__global__ void norm_backward_kernel(const T* __restrict__ dy, const T* __restrict__ x, const T* __restrict__ weight,
                                     const AccType<T>* __restrict__ mean_in, const AccType<T>* __restrict__ rstd_in,
                                     T* __restrict__ dx, AccType<T>* __restrict__ partial_w,
                                     AccType<T>* __restrict__ partial_b, int64_t rows, int64_t cols, bool rms) {
  using A = AccType<T>;
  const int64_t group = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  const int64_t groups = static_cast<int64_t>(gridDim.x) * blockDim.y;
  const int64_t vectors = cols / N;
  const A inv_cols = A(1) / static_cast<A>(cols);
  const bool column_sums = partial_w != nullptr;
  A* pw = column_sums ? partial_w + group * cols : nullptr;
  A* pb = column_sums ? partial_b + group * cols : nullptr;
  const cuda::PairSumOp pair_sum;

  constexpr int kSlots = Cache > 0 ? Cache : 1;
  A w_cache[kSlots][N], acc_w[kSlots][N], acc_b[kSlots][N];
  if constexpr (Cache > 0) {
#pragma unroll
    for (int k = 0; k < Cache; ++k) {
      const int64_t v = k * static_cast<int64_t>(blockDim.x) + threadIdx.x;
#pragma unroll
      for (int j = 0; j < N; ++j) w_cache[k][j] = acc_w[k][j] = acc_b[k][j] = A(0);
      if (weight && v < vectors) load_vec<T, N>(weight + v * N, w_cache[k]);
    }
  } else if (column_sums) {
    for (int64_t v = threadIdx.x; v < vectors; v += blockDim.x)  // the columns this thread adds to
#pragma unroll
      for (int j = 0; j < N; ++j) pw[v * N + j] = pb[v * N + j] = A(0);
  }
  // Every thread runs the same number of iterations (the reductions synchronise the block).
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * blockDim.y; base < rows; base += groups) {
    const int64_t row = base + threadIdx.y;
    const bool active = row < rows;
    const T* xr = x + (active ? row : 0) * cols;
    const T* dyr = dy + (active ? row : 0) * cols;
    const A mean = active && !rms ? mean_in[row] : A(0);
    const A rstd = active ? rstd_in[row] : A(0);
    if constexpr (Cache > 0) {
      A xhat[Cache][N], g[Cache][N];
      cuda::Pair<A> sums{A(0), A(0)};
#pragma unroll
      for (int k = 0; k < Cache; ++k) {
        const int64_t v = k * static_cast<int64_t>(blockDim.x) + threadIdx.x;
        if (active && v < vectors) {
          load_vec<T, N>(xr + v * N, xhat[k]);
          load_vec<T, N>(dyr + v * N, g[k]);
        } else {
#pragma unroll
          for (int j = 0; j < N; ++j) xhat[k][j] = g[k][j] = A(0);
        }
#pragma unroll
        for (int j = 0; j < N; ++j) {
          xhat[k][j] = (xhat[k][j] - mean) * rstd;
          const A wdy = weight ? g[k][j] * w_cache[k][j] : g[k][j];
          sums.a += wdy;
          sums.b += wdy * xhat[k][j];
          acc_w[k][j] += g[k][j] * xhat[k][j];
          acc_b[k][j] += g[k][j];
        }
      }
      if (dx) {
        sums = cuda::row_allreduce_pair(sums, pair_sum);
        const A mean_wdy = rms ? A(0) : sums.a * inv_cols, mean_wdy_xhat = sums.b * inv_cols;
#pragma unroll
        for (int k = 0; k < Cache; ++k) {
          const int64_t v = k * static_cast<int64_t>(blockDim.x) + threadIdx.x;
          if (!active || v >= vectors) continue;
          A out[N];
#pragma unroll
          for (int j = 0; j < N; ++j) {
            const A wdy = weight ? g[k][j] * w_cache[k][j] : g[k][j];
            out[j] = rstd * (wdy - mean_wdy - xhat[k][j] * mean_wdy_xhat);
          }
          store_vec<T, N>(dx + row * cols + v * N, out);
        }
      }
    } else {
      A xv[N], gv[N], wv[N];
      cuda::Pair<A> sums{A(0), A(0)};
      for (int64_t v = threadIdx.x; active && v < vectors; v += blockDim.x) {
        load_vec<T, N>(xr + v * N, xv);
        load_vec<T, N>(dyr + v * N, gv);
        if (weight) load_vec<T, N>(weight + v * N, wv);
#pragma unroll
        for (int j = 0; j < N; ++j) {
          const A xhat = (xv[j] - mean) * rstd;
          const A wdy = weight ? gv[j] * wv[j] : gv[j];
          sums.a += wdy;
          sums.b += wdy * xhat;
          if (column_sums) {
            pw[v * N + j] += gv[j] * xhat;
            pb[v * N + j] += gv[j];
          }
        }
      }
      if (dx) {
        sums = cuda::row_allreduce_pair(sums, pair_sum);
        const A mean_wdy = rms ? A(0) : sums.a * inv_cols, mean_wdy_xhat = sums.b * inv_cols;
        for (int64_t v = threadIdx.x; active && v < vectors; v += blockDim.x) {
          load_vec<T, N>(xr + v * N, xv);
          load_vec<T, N>(dyr + v * N, gv);
          if (weight) load_vec<T, N>(weight + v * N, wv);
          A out[N];
#pragma unroll
          for (int j = 0; j < N; ++j) {
            const A wdy = weight ? gv[j] * wv[j] : gv[j];
            out[j] = rstd * (wdy - mean_wdy - (xv[j] - mean) * rstd * mean_wdy_xhat);
          }
          store_vec<T, N>(dx + row * cols + v * N, out);
        }
      }
    }
  }
  if constexpr (Cache > 0) {
    if (column_sums) {
#pragma unroll
      for (int k = 0; k < Cache; ++k) {
        const int64_t v = k * static_cast<int64_t>(blockDim.x) + threadIdx.x;
        if (v >= vectors) continue;
#pragma unroll
        for (int j = 0; j < N; ++j) {
          pw[v * N + j] = acc_w[k][j];
          pb[v * N + j] = acc_b[k][j];
        }
      }
    }
  }
}

// out[c] = sum over p of partial[p, c], p in order. Block (32, 16): 16 threads per column each
// sum every 16th partial row, then one adds the 16 results in order.
template <typename T>
__global__ void column_sum_kernel(const AccType<T>* __restrict__ partial, int64_t parts, int64_t cols,
                                  T* __restrict__ out) {
  using A = AccType<T>;
  __shared__ A sums[16][33];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  A acc = 0;
  if (c < cols)
    for (int64_t p = threadIdx.y; p < parts; p += 16) acc += partial[p * cols + c];
  sums[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    A total = sums[0][threadIdx.x];
    for (int k = 1; k < 16; ++k) total += sums[k][threadIdx.x];
    out[c] = store<T>(total);
  }
}

template <typename T>
void forward_typed(bool rms, const T* x, const T* weight, const T* bias, T* y, AccType<T>* mean, AccType<T>* rstd,
                   int64_t rows, int64_t cols, double eps, cudaStream_t stream) {
  using A = AccType<T>;
  auto launch = [&](auto width) {
    constexpr int N = decltype(width)::value;
    const cuda::RowPlan plan = cuda::plan_rows(cols / N, kNormMaxThreadsPerRow);
    const dim3 block(plan.threads_per_row, plan.rows_per_block);
    const int64_t blocks = (rows + plan.rows_per_block - 1) / plan.rows_per_block;
    TESSERA_CHECK(blocks <= 0x7fffffff, rms ? "rms_norm" : "layer_norm", ": too many rows (", rows, ")");
    auto run = [&](auto cache) {
      constexpr int kCache = decltype(cache)::value;
      norm_forward_kernel<T, N, kCache><<<static_cast<unsigned>(blocks), block, 0, stream>>>(
          x, weight, bias, y, mean, rstd, rows, cols, static_cast<A>(eps), rms);
    };
    if constexpr (N == 1) run(std::integral_constant<int, 0>{});
    else cuda::with_cache_size<64 / N>(plan.per_thread, run);  // x only: up to 64 values
    TESSERA_CUDA_LAUNCH_CHECK();
  };
  cuda::with_vector_width<T>(cols, {x, weight, bias, y}, launch);
}

template <typename T>
void backward_typed(bool rms, const T* dy, const T* x, const T* weight, const AccType<T>* mean,
                    const AccType<T>* rstd, T* dx, T* dweight, T* dbias, int64_t rows, int64_t cols,
                    cudaStream_t stream) {
  using A = AccType<T>;
  const bool column_sums = dweight || dbias;
  auto launch = [&](auto width) {
    constexpr int N = decltype(width)::value;
    const cuda::RowPlan plan = cuda::plan_rows(cols / N, kNormMaxThreadsPerRow);
    const dim3 block(plan.threads_per_row, plan.rows_per_block);
    const int64_t row_blocks = (rows + plan.rows_per_block - 1) / plan.rows_per_block;
    int64_t blocks = std::min<int64_t>(row_blocks, 0x7fffffff);
    A* partial_w = nullptr;
    A* partial_b = nullptr;
    if (column_sums) {
      const int64_t max_parts = std::clamp<int64_t>(kMaxPartialFloats / cols, 1, kMaxPartialRows);
      blocks = std::max<int64_t>(1, std::min(blocks, max_parts / plan.rows_per_block));
      const int64_t parts = blocks * plan.rows_per_block;
      const int device = cuda::current_device();
      partial_w = static_cast<A*>(cuda_allocate(sizeof(A) * parts * cols, device, stream));
      partial_b = static_cast<A*>(cuda_allocate(sizeof(A) * parts * cols, device, stream));
    }
    auto run = [&](auto cache) {
      constexpr int kCache = decltype(cache)::value;
      norm_backward_kernel<T, N, kCache><<<static_cast<unsigned>(blocks), block, 0, stream>>>(
          dy, x, weight, mean, rstd, dx, partial_w, partial_b, rows, cols, rms);
    };
    if (blocks > 0) {
      // five cached arrays (x-hat, dy, weight, two sums): up to 32 values each
      if constexpr (N == 1) run(std::integral_constant<int, 0>{});
      else cuda::with_cache_size<32 / N>(plan.per_thread, run);
      TESSERA_CUDA_LAUNCH_CHECK();
    }
    if (column_sums) {
      const int64_t parts = blocks * plan.rows_per_block;
      const unsigned col_blocks = static_cast<unsigned>((cols + 31) / 32);
      if (dweight) {
        column_sum_kernel<T><<<col_blocks, dim3(32, 16), 0, stream>>>(partial_w, parts, cols, dweight);
        TESSERA_CUDA_LAUNCH_CHECK();
      }
      if (dbias) {
        column_sum_kernel<T><<<col_blocks, dim3(32, 16), 0, stream>>>(partial_b, parts, cols, dbias);
        TESSERA_CUDA_LAUNCH_CHECK();
      }
      cuda_free(partial_w);
      cuda_free(partial_b);
    }
  };
  cuda::with_vector_width<T>(cols, {dy, x, weight, dx}, launch);
}

}  // namespace

void norm_forward_cuda(DType dtype, bool rms, const void* x, const void* weight, const void* bias, void* y,
                       void* mean, void* rstd, int64_t rows, int64_t cols, double eps, void* stream) {
  if (rows == 0 || cols == 0) return;
  cuda::cuda_float_dtype_switch(dtype, rms ? "rms_norm" : "layer_norm", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = AccType<T>;
    forward_typed<T>(rms, static_cast<const T*>(x), static_cast<const T*>(weight), static_cast<const T*>(bias),
                     static_cast<T*>(y), static_cast<A*>(mean), static_cast<A*>(rstd), rows, cols, eps,
                     cuda::stream_of(stream));
  });
}

void norm_backward_cuda(DType dtype, bool rms, const void* dy, const void* x, const void* weight, const void* mean,
                        const void* rstd, void* dx, void* dweight, void* dbias, int64_t rows, int64_t cols,
                        void* stream) {
  if (cols == 0 || (!dx && !dweight && !dbias)) return;
  cuda::cuda_float_dtype_switch(dtype, rms ? "rms_norm backward" : "layer_norm backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = AccType<T>;
    backward_typed<T>(rms, static_cast<const T*>(dy), static_cast<const T*>(x), static_cast<const T*>(weight),
                      static_cast<const A*>(mean), static_cast<const A*>(rstd), static_cast<T*>(dx),
                      static_cast<T*>(dweight), static_cast<T*>(dbias), rows, cols, cuda::stream_of(stream));
  });
}

}  // namespace tessera::kernels
