// CUDA softmax and log-softmax (kernels/softmax.h); kernels/cpu/softmax.cpp is the reference.
//
// Last-dimension softmax (inner == 1) gives each row a group of threads (kernels/cuda/rows.cuh).
// When the row fits in registers it is read once: max, then sum of exp, then the write, all
// from registers. Longer rows take two reads: one pass keeps a running (max, sum) pair per
// thread (the online-softmax recurrence: on a new maximum m', sum *= exp(m - m')), the groups'
// pairs are combined the same way, and a second pass writes. The backward reads y and dy,
// reduces sum(dy * y) (log-softmax: sum(dy)) and writes dx.
// Other dimensions (inner > 1) use one thread per (outer, inner) column; neighbouring threads
// read neighbouring columns, so loads coalesce without a transpose.
#include <cfloat>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/rows.cuh"
#include "kernels/softmax.h"

namespace tessera::kernels {
namespace {

// Math through std:: so that no tessera function of the same name can hide it.
using std::exp; using std::log;
using cuda::AccType;
using cuda::load;
using cuda::load_vec;
using cuda::MaxOp;
using cuda::online_add;
using cuda::OnlineSoftmaxOp;
using cuda::Pair;
using cuda::store;
using cuda::store_vec;

constexpr int kSoftmaxMaxThreadsPerRow = 1024;

// y from x given the row's max and (softmax) 1/sum or (log-softmax) max + log(sum).
template <bool Log, typename A>
__device__ __forceinline__ A softmax_value(A v, A max, A norm) {
  return Log ? v - norm : exp(v - max) * norm;
}

template <typename T, int N, int Cache, bool Log>
__global__ void softmax_row_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int64_t cols) {
  using A = AccType<T>;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool active = row < rows;
  const int64_t vectors = cols / N;
  const T* xr = x + (active ? row : 0) * cols;
  T* yr = y + (active ? row : 0) * cols;
  A max, norm;
  if constexpr (Cache > 0) {
    A cache[Cache][N];
    A local_max = -INFINITY;
#pragma unroll
    for (int k = 0; k < Cache; ++k) {
      const int64_t v = k * static_cast<int64_t>(blockDim.x) + threadIdx.x;
      if (active && v < vectors) {
        load_vec<T, N>(xr + v * N, cache[k]);
      } else {
#pragma unroll
        for (int j = 0; j < N; ++j) cache[k][j] = -INFINITY;
      }
#pragma unroll
      for (int j = 0; j < N; ++j) local_max = MaxOp{}(local_max, cache[k][j]);
    }
    max = cuda::row_allreduce(local_max, MaxOp{});
    A sum = 0;
#pragma unroll
    for (int k = 0; k < Cache; ++k)
#pragma unroll
      for (int j = 0; j < N; ++j) sum += cache[k][j] == -INFINITY ? A(0) : exp(cache[k][j] - max);
    sum = cuda::row_allreduce(sum, cuda::SumOp{});
    norm = Log ? max + log(sum) : A(1) / sum;
#pragma unroll
    for (int k = 0; k < Cache; ++k) {
      const int64_t v = k * static_cast<int64_t>(blockDim.x) + threadIdx.x;
      if (!active || v >= vectors) continue;
      A out[N];
#pragma unroll
      for (int j = 0; j < N; ++j) out[j] = softmax_value<Log>(cache[k][j], max, norm);
      store_vec<T, N>(yr + v * N, out);
    }
  } else {
    A xv[N];
    Pair<A> state{-INFINITY, A(0)};
    for (int64_t v = threadIdx.x; active && v < vectors; v += blockDim.x) {
      load_vec<T, N>(xr + v * N, xv);
#pragma unroll
      for (int j = 0; j < N; ++j) online_add(state, xv[j]);
    }
    state = cuda::row_allreduce_pair(state, OnlineSoftmaxOp{});
    max = state.a;
    norm = Log ? max + log(state.b) : A(1) / state.b;
    for (int64_t v = threadIdx.x; active && v < vectors; v += blockDim.x) {
      load_vec<T, N>(xr + v * N, xv);
      A out[N];
#pragma unroll
      for (int j = 0; j < N; ++j) out[j] = softmax_value<Log>(xv[j], max, norm);
      store_vec<T, N>(yr + v * N, out);
    }
  }
}

template <typename T, int N, int Cache, bool Log>
__global__ void softmax_row_backward_kernel(const T* __restrict__ y, const T* __restrict__ dy, T* __restrict__ dx,
                                            int64_t rows, int64_t cols) {
  using A = AccType<T>;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool active = row < rows;
  const int64_t vectors = cols / N;
  const int64_t offset = (active ? row : 0) * cols;
  auto grad = [](A yv, A g, A dot) { return Log ? g - exp(yv) * dot : yv * (g - dot); };
  if constexpr (Cache > 0) {
    A yc[Cache][N], gc[Cache][N];
    A dot = 0;
#pragma unroll
    for (int k = 0; k < Cache; ++k) {
      const int64_t v = k * static_cast<int64_t>(blockDim.x) + threadIdx.x;
      if (active && v < vectors) {
        load_vec<T, N>(y + offset + v * N, yc[k]);
        load_vec<T, N>(dy + offset + v * N, gc[k]);
      } else {
#pragma unroll
        for (int j = 0; j < N; ++j) yc[k][j] = gc[k][j] = A(0);
      }
#pragma unroll
      for (int j = 0; j < N; ++j) dot += Log ? gc[k][j] : gc[k][j] * yc[k][j];
    }
    dot = cuda::row_allreduce(dot, cuda::SumOp{});
#pragma unroll
    for (int k = 0; k < Cache; ++k) {
      const int64_t v = k * static_cast<int64_t>(blockDim.x) + threadIdx.x;
      if (!active || v >= vectors) continue;
      A out[N];
#pragma unroll
      for (int j = 0; j < N; ++j) out[j] = grad(yc[k][j], gc[k][j], dot);
      store_vec<T, N>(dx + offset + v * N, out);
    }
  } else {
    A yv[N], gv[N];
    A dot = 0;
    for (int64_t v = threadIdx.x; active && v < vectors; v += blockDim.x) {
      load_vec<T, N>(y + offset + v * N, yv);
      load_vec<T, N>(dy + offset + v * N, gv);
#pragma unroll
      for (int j = 0; j < N; ++j) dot += Log ? gv[j] : gv[j] * yv[j];
    }
    dot = cuda::row_allreduce(dot, cuda::SumOp{});
    for (int64_t v = threadIdx.x; active && v < vectors; v += blockDim.x) {
      load_vec<T, N>(y + offset + v * N, yv);
      load_vec<T, N>(dy + offset + v * N, gv);
      A out[N];
#pragma unroll
      for (int j = 0; j < N; ++j) out[j] = grad(yv[j], gv[j], dot);
      store_vec<T, N>(dx + offset + v * N, out);
    }
  }
}

// One thread per (outer, inner) column of a [outer, n, inner] view.
template <typename T, bool Log>
__global__ void softmax_column_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t outer, int64_t n,
                                              int64_t inner) {
  using A = AccType<T>;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= outer * inner) return;
  const int64_t base = (j / inner) * n * inner + j % inner;
  Pair<A> state{-INFINITY, A(0)};
  for (int64_t r = 0; r < n; ++r) online_add(state, load(x[base + r * inner]));
  const A norm = Log ? state.a + log(state.b) : A(1) / state.b;
  for (int64_t r = 0; r < n; ++r)
    y[base + r * inner] = store<T>(softmax_value<Log>(load(x[base + r * inner]), state.a, norm));
}

template <typename T, bool Log>
__global__ void softmax_column_backward_kernel(const T* __restrict__ y, const T* __restrict__ dy, T* __restrict__ dx,
                                               int64_t outer, int64_t n, int64_t inner) {
  using A = AccType<T>;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= outer * inner) return;
  const int64_t base = (j / inner) * n * inner + j % inner;
  A dot = 0;
  for (int64_t r = 0; r < n; ++r) {
    const int64_t at = base + r * inner;
    dot += Log ? load(dy[at]) : load(dy[at]) * load(y[at]);
  }
  for (int64_t r = 0; r < n; ++r) {
    const int64_t at = base + r * inner;
    const A yv = load(y[at]), g = load(dy[at]);
    dx[at] = store<T>(Log ? g - exp(yv) * dot : yv * (g - dot));
  }
}

template <bool Log, typename T>
void forward_typed(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, cudaStream_t stream) {
  if (inner > 1) {
    const int64_t columns = outer * inner;
    TESSERA_CHECK(columns <= int64_t{0x7fffffff} * cuda::kThreads, "softmax: tensor too large");
    softmax_column_forward_kernel<T, Log><<<static_cast<unsigned>((columns + cuda::kThreads - 1) / cuda::kThreads),
                                            cuda::kThreads, 0, stream>>>(x, y, outer, n, inner);
    TESSERA_CUDA_LAUNCH_CHECK();
    return;
  }
  cuda::with_vector_width<T>(n, {x, y}, [&](auto width) {
    constexpr int N = decltype(width)::value;
    const cuda::RowPlan plan = cuda::plan_rows(n / N, kSoftmaxMaxThreadsPerRow);
    const int64_t blocks = (outer + plan.rows_per_block - 1) / plan.rows_per_block;
    TESSERA_CHECK(blocks <= 0x7fffffff, "softmax: too many rows (", outer, ")");
    auto run = [&](auto cache) {
      constexpr int kCache = decltype(cache)::value;
      const dim3 block(plan.threads_per_row, plan.rows_per_block);
      const auto grid = static_cast<unsigned>(blocks);
      softmax_row_forward_kernel<T, N, kCache, Log><<<grid, block, 0, stream>>>(x, y, outer, n);
    };
    if constexpr (N == 1) run(std::integral_constant<int, 0>{});
    else cuda::with_cache_size<64 / N>(plan.per_thread, run);
    TESSERA_CUDA_LAUNCH_CHECK();
  });
}

template <bool Log, typename T>
void backward_typed(const T* y, const T* dy, T* dx, int64_t outer, int64_t n, int64_t inner, cudaStream_t stream) {
  if (inner > 1) {
    const int64_t columns = outer * inner;
    TESSERA_CHECK(columns <= int64_t{0x7fffffff} * cuda::kThreads, "softmax backward: tensor too large");
    softmax_column_backward_kernel<T, Log><<<static_cast<unsigned>((columns + cuda::kThreads - 1) / cuda::kThreads),
                                             cuda::kThreads, 0, stream>>>(y, dy, dx, outer, n, inner);
    TESSERA_CUDA_LAUNCH_CHECK();
    return;
  }
  cuda::with_vector_width<T>(n, {y, dy, dx}, [&](auto width) {
    constexpr int N = decltype(width)::value;
    const cuda::RowPlan plan = cuda::plan_rows(n / N, kSoftmaxMaxThreadsPerRow);
    const int64_t blocks = (outer + plan.rows_per_block - 1) / plan.rows_per_block;
    TESSERA_CHECK(blocks <= 0x7fffffff, "softmax backward: too many rows (", outer, ")");
    auto run = [&](auto cache) {
      constexpr int kCache = decltype(cache)::value;
      softmax_row_backward_kernel<T, N, kCache, Log>
          <<<static_cast<unsigned>(blocks), dim3(plan.threads_per_row, plan.rows_per_block), 0, stream>>>(y, dy, dx,
                                                                                                          outer, n);
    };
    if constexpr (N == 1) run(std::integral_constant<int, 0>{});
    else cuda::with_cache_size<32 / N>(plan.per_thread, run);  // y and dy cached
    TESSERA_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace

void softmax_forward_cuda(DType dtype, bool log, const void* x, void* y, int64_t outer, int64_t n, int64_t inner,
                          void* stream) {
  if (outer * n * inner == 0) return;
  cuda::cuda_float_dtype_switch(dtype, log ? "log_softmax" : "softmax", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const auto s = cuda::stream_of(stream);
    if (log) forward_typed<true, T>(static_cast<const T*>(x), static_cast<T*>(y), outer, n, inner, s);
    else forward_typed<false, T>(static_cast<const T*>(x), static_cast<T*>(y), outer, n, inner, s);
  });
}

void softmax_backward_cuda(DType dtype, bool log, const void* y, const void* dy, void* dx, int64_t outer, int64_t n,
                           int64_t inner, void* stream) {
  if (outer * n * inner == 0) return;
  cuda::cuda_float_dtype_switch(dtype, log ? "log_softmax backward" : "softmax backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const auto s = cuda::stream_of(stream);
    const auto py = static_cast<const T*>(y);
    const auto pdy = static_cast<const T*>(dy);
    if (log) backward_typed<true, T>(py, pdy, static_cast<T*>(dx), outer, n, inner, s);
    else backward_typed<false, T>(py, pdy, static_cast<T*>(dx), outer, n, inner, s);
  });
}

}  // namespace tessera::kernels
