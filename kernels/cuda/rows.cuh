// Building blocks of the row kernels (norm.cu, softmax.cu, loss.cu): each row of a contiguous
// [rows, cols] matrix gets a group of threads, and the group reduces across itself.
//
// defines: tessera::kernels::cuda::RowPlan, plan_rows, row_allreduce, row_allreduce_pair,
//          Pair, SumOp, PairSumOp, MaxOp, OnlineSoftmaxOp, online_add, load_vec, store_vec,
//          with_cache_size, with_vector_width, kMaxRowsPerBlock
//
// A block has shape (threads_per_row, rows_per_block): threadIdx.y picks the row within the
// block, threadIdx.x the thread within the row. threads_per_row is a multiple of 32, so a row
// is one or more whole warps. A thread owns the N-element vectors v = threadIdx.x + k *
// threads_per_row of its row; when the row fits in registers (k < cache size, see
// with_cache_size) the kernels keep those vectors in registers between passes instead of
// reading the row again. Reductions are xor-butterflies within a warp (every lane ends with
// the same bits) and then a fixed-order sum over the row's warps in shared memory, so results
// do not depend on timing. Every thread of a block must call the reductions the same number
// of times (they synchronise the block when a row spans several warps): kernels never return
// early for a row past the end; they mask its loads and stores instead.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "kernels/cuda/common.cuh"

namespace tessera::kernels::cuda {

constexpr int kMaxRowsPerBlock = 8;

struct RowPlan {
  int threads_per_row = 32;
  int rows_per_block = 1;
  int64_t per_thread = 1;  // vectors each thread handles
};

// Threads per row: enough for one vector each, rounded up to whole warps, at most
// max_threads_per_row; small rows share a block (about 256 threads per block).
inline RowPlan plan_rows(int64_t vectors, int max_threads_per_row) {
  RowPlan plan;
  int64_t threads = (vectors + 31) / 32 * 32;
  if (threads > max_threads_per_row) threads = max_threads_per_row;
  if (threads < 32) threads = 32;
  plan.threads_per_row = static_cast<int>(threads);
  const int per_block = 256 / plan.threads_per_row;
  plan.rows_per_block = per_block < 1 ? 1 : (per_block > kMaxRowsPerBlock ? kMaxRowsPerBlock : per_block);
  plan.per_thread = (vectors + threads - 1) / threads;
  return plan;
}

// Calls fn(std::integral_constant<int, K>) with K the register cache size (vectors per
// thread) that covers `per_thread`, or K = 0 when the row needs more than MaxCache vectors per
// thread and is read again for each pass instead. Kernels pick MaxCache so that their cached
// arrays stay within about 160 registers.
template <int MaxCache, typename Fn>
void with_cache_size(int64_t per_thread, Fn&& fn) {
  if (per_thread <= 1) return fn(std::integral_constant<int, 1>{});
  if constexpr (MaxCache >= 2)
    if (per_thread <= 2) return fn(std::integral_constant<int, 2>{});
  if constexpr (MaxCache >= 4)
    if (per_thread <= 4) return fn(std::integral_constant<int, 4>{});
  if constexpr (MaxCache >= 8)
    if (per_thread <= 8) return fn(std::integral_constant<int, 8>{});
  fn(std::integral_constant<int, 0>{});
}

// Calls fn(std::integral_constant<int, N>) with N the 16-byte vector width of T when rows of
// `cols` elements and every (non-null) pointer allow vector accesses, else N = 1. Always 1 for
// double: f64 runs are for tests, and fewer variants keep the build short.
template <typename T, typename Fn>
void with_vector_width(int64_t cols, std::initializer_list<const void*> pointers, Fn&& fn) {
  if constexpr (std::is_same_v<T, double>) {
    fn(std::integral_constant<int, 1>{});
  } else {
    constexpr int N = vec_width<T>();
    bool vector_ok = cols % N == 0;
    for (const void* p : pointers)
      if (p && !aligned16(p)) vector_ok = false;
    if (vector_ok) fn(std::integral_constant<int, N>{});
    else fn(std::integral_constant<int, 1>{});
  }
}

template <typename A>
struct Pair {
  A a, b;
};

template <typename A, typename Combine>
__device__ __forceinline__ A row_allreduce(A v, Combine combine) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v = combine(v, __shfl_xor_sync(0xffffffffu, v, offset));
  if (blockDim.x == 32) return v;
  __shared__ A partial[kMaxRowsPerBlock][32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) partial[threadIdx.y][warp] = v;
  __syncthreads();
  A total = partial[threadIdx.y][0];
  for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) total = combine(total, partial[threadIdx.y][w]);
  __syncthreads();  // the next call may overwrite `partial`
  return total;
}

template <typename A, typename Combine>
__device__ __forceinline__ Pair<A> row_allreduce_pair(Pair<A> v, Combine combine) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    const Pair<A> other{__shfl_xor_sync(0xffffffffu, v.a, offset), __shfl_xor_sync(0xffffffffu, v.b, offset)};
    v = combine(v, other);
  }
  if (blockDim.x == 32) return v;
  __shared__ A partial_a[kMaxRowsPerBlock][32];
  __shared__ A partial_b[kMaxRowsPerBlock][32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) {
    partial_a[threadIdx.y][warp] = v.a;
    partial_b[threadIdx.y][warp] = v.b;
  }
  __syncthreads();
  Pair<A> total{partial_a[threadIdx.y][0], partial_b[threadIdx.y][0]};
  for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w)
    total = combine(total, Pair<A>{partial_a[threadIdx.y][w], partial_b[threadIdx.y][w]});
  __syncthreads();
  return total;
}

struct SumOp {
  template <typename A>
  __device__ __forceinline__ A operator()(A x, A y) const {
    return x + y;
  }
};

struct PairSumOp {
  template <typename A>
  __device__ __forceinline__ Pair<A> operator()(Pair<A> x, Pair<A> y) const {
    return Pair<A>{x.a + y.a, x.b + y.b};
  }
};

// Online softmax: a part of a row is summarised by the pair (max, sum of exp(x - max)); a new
// value or another part's pair folds in by rescaling the sum to the larger maximum. Entries of
// -inf add nothing; a NaN anywhere makes the maximum NaN, so the row's result is NaN.
struct MaxOp {
  template <typename A>
  __device__ __forceinline__ A operator()(A x, A y) const {
    return (x != x || x > y) ? x : y;  // NaN wins, so a NaN row stays NaN
  }
};

// (max, sum of exp(x - max)) pairs of two parts of a row combined into the pair of the whole.
struct OnlineSoftmaxOp {
  template <typename A>
  __device__ __forceinline__ Pair<A> operator()(Pair<A> p, Pair<A> q) const {
    using std::exp;
    const A m = MaxOp{}(p.a, q.a);
    const A sp = p.a == -INFINITY ? A(0) : p.b * exp(p.a - m);
    const A sq = q.a == -INFINITY ? A(0) : q.b * exp(q.a - m);
    return Pair<A>{m, sp + sq};
  }
};

template <typename A>
__device__ __forceinline__ void online_add(Pair<A>& state, A v) {
  using std::exp;
  if (v > state.a) {
    state.b = (state.a == -INFINITY ? A(0) : state.b * exp(state.a - v)) + A(1);
    state.a = v;
  } else if (v == v && v != -INFINITY) {
    state.b += exp(v - state.a);
  } else if (v != v) {
    state.a = v;  // NaN
  }
}

// N consecutive elements at p (16-byte aligned when N > 1) converted to the accumulation type.
template <typename T, int N>
__device__ __forceinline__ void load_vec(const T* p, AccType<T> (&out)[N]) {
  if constexpr (N == 1) {
    out[0] = load(*p);
  } else {
    const Vec<T, N> v = *reinterpret_cast<const Vec<T, N>*>(p);
#pragma unroll
    for (int j = 0; j < N; ++j) out[j] = load(v.v[j]);
  }
}

template <typename T, int N>
__device__ __forceinline__ void store_vec(T* p, const AccType<T> (&in)[N]) {
  if constexpr (N == 1) {
    *p = store<T>(in[0]);
  } else {
    Vec<T, N> v;
#pragma unroll
    for (int j = 0; j < N; ++j) v.v[j] = store<T>(in[j]);
    *reinterpret_cast<Vec<T, N>*>(p) = v;
  }
}

}  // namespace tessera::kernels::cuda
