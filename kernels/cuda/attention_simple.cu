// Simple CUDA attention for every case the tensor-core kernels do not take (f32, f64, head dims
// other than 64/128, unaligned operands): one warp per row, lanes split the head dim, keys
// visited one at a time with the online softmax (forward) or the recomputed probability
// (backward). Correct and deterministic (no atomics), but O(len^2) warp reductions: meant for
// tests (the op test table's CPU-vs-CUDA checks run through it) and odd shapes, not speed.
//
//   forward, warp per query row i:  s_j = q_i.k_j scale;  m, l, acc updated key by key;
//                                    out_i = acc / l,  lse_i = m + log l
//   delta,   warp per query row i:  delta_i = dout_i . out_i
//   dq,      warp per query row i:  p = exp(s_ij - lse_i), ds = p (dout_i.v_j - delta_i),
//                                    dq_i = scale sum_j ds k_j
//   dk, dv,  warp per key j:        over the query heads sharing the kv head and their rows:
//                                    dv_j += p dout_i,  dk_j += scale ds q_i
#include "framework/core/allocator.h"
#include "kernels/cuda/attention_launch.cuh"
#include "kernels/cuda/common.cuh"

namespace tessera::kernels::attention {
namespace {

using cuda::AccType;
using cuda::load;
using cuda::store;

constexpr int kPerLane = kSimpleMaxHeadDim / 32;
constexpr int kBlockThreads = 256;
constexpr int kWarpsPerBlock = kBlockThreads / 32;

// Sizes and strides, by value, with typed pointers resolved inside the kernels.
struct SimpleArgs {
  const void* q;
  const void* k;
  const void* v;
  const void* out;
  const void* dout;
  void* out_w;
  void* lse;
  void* delta;
  void* dq;
  void* dk;
  void* dv;
  AttentionStrides qs, ks, vs, os, dos, dqs, dks, dvs;
  int64_t batch, heads, kv_heads, group, q_len, kv_len;
  int head_dim;
  bool causal;
  double scale;
};

template <typename A>
__device__ __forceinline__ A warp_sum(A x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

template <typename T>
__device__ __forceinline__ const T* row_of(const void* base, const AttentionStrides& s, int64_t b, int64_t h,
                                           int64_t i) {
  return static_cast<const T*>(base) + b * s.batch + h * s.head + i * s.row;
}

template <typename T>
__device__ __forceinline__ void load_row(const T* row, int head_dim, int lane, AccType<T> (&x)[kPerLane]) {
#pragma unroll
  for (int r = 0; r < kPerLane; ++r) {
    const int d = lane + 32 * r;
    x[r] = d < head_dim ? load(row[d]) : AccType<T>(0);
  }
}

template <typename T>
__device__ __forceinline__ AccType<T> dot_row(const AccType<T> (&x)[kPerLane], const T* row, int head_dim, int lane) {
  AccType<T> s = 0;
#pragma unroll
  for (int r = 0; r < kPerLane; ++r) {
    const int d = lane + 32 * r;
    if (d < head_dim) s += x[r] * load(row[d]);
  }
  return warp_sum(s);
}

template <typename T>
__device__ __forceinline__ void store_row(T* row, const AccType<T> (&x)[kPerLane], AccType<T> factor, int head_dim,
                                          int lane) {
#pragma unroll
  for (int r = 0; r < kPerLane; ++r) {
    const int d = lane + 32 * r;
    if (d < head_dim) row[d] = store<T>(x[r] * factor);
  }
}

__device__ __forceinline__ int64_t warp_index() {
  return (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
}

template <typename T>
__global__ void simple_forward_kernel(const SimpleArgs a) {
  using A = AccType<T>;
  const int64_t row = warp_index();
  if (row >= a.batch * a.heads * a.q_len) return;
  const int lane = threadIdx.x % 32;
  const int64_t i = row % a.q_len, bh = row / a.q_len, b = bh / a.heads, h = bh % a.heads, hk = h / a.group;
  A q[kPerLane], acc[kPerLane];
  load_row(row_of<T>(a.q, a.qs, b, h, i), a.head_dim, lane, q);
#pragma unroll
  for (int r = 0; r < kPerLane; ++r) acc[r] = 0;
  const A scale = static_cast<A>(a.scale);
  A m = -INFINITY, l = 0;
  const int64_t last = a.causal ? min(a.kv_len - 1, i + a.kv_len - a.q_len) : a.kv_len - 1;
  for (int64_t j = 0; j <= last; ++j) {
    const A s = dot_row<T>(q, row_of<T>(a.k, a.ks, b, hk, j), a.head_dim, lane) * scale;
    const A m_new = s > m ? s : m;
    const A alpha = exp(m - m_new), p = exp(s - m_new);
    l = l * alpha + p;
    m = m_new;
    const T* v = row_of<T>(a.v, a.vs, b, hk, j);
#pragma unroll
    for (int r = 0; r < kPerLane; ++r) {
      const int d = lane + 32 * r;
      if (d < a.head_dim) acc[r] = acc[r] * alpha + p * load(v[d]);
    }
  }
  T* out = static_cast<T*>(a.out_w) + b * a.os.batch + h * a.os.head + i * a.os.row;
  store_row(out, acc, l > A(0) ? A(1) / l : A(0), a.head_dim, lane);
  if (lane == 0) static_cast<A*>(a.lse)[row] = l > A(0) ? m + log(l) : A(INFINITY);
}

template <typename T>
__global__ void simple_delta_kernel(const SimpleArgs a) {
  using A = AccType<T>;
  const int64_t row = warp_index();
  if (row >= a.batch * a.heads * a.q_len) return;
  const int lane = threadIdx.x % 32;
  const int64_t i = row % a.q_len, bh = row / a.q_len, b = bh / a.heads, h = bh % a.heads;
  A g[kPerLane];
  load_row(row_of<T>(a.dout, a.dos, b, h, i), a.head_dim, lane, g);
  const A d = dot_row<T>(g, row_of<T>(a.out, a.os, b, h, i), a.head_dim, lane);
  if (lane == 0) static_cast<A*>(a.delta)[row] = d;
}

template <typename T>
__global__ void simple_dq_kernel(const SimpleArgs a) {
  using A = AccType<T>;
  const int64_t row = warp_index();
  if (row >= a.batch * a.heads * a.q_len) return;
  const int lane = threadIdx.x % 32;
  const int64_t i = row % a.q_len, bh = row / a.q_len, b = bh / a.heads, h = bh % a.heads, hk = h / a.group;
  A q[kPerLane], g[kPerLane], dq[kPerLane];
  load_row(row_of<T>(a.q, a.qs, b, h, i), a.head_dim, lane, q);
  load_row(row_of<T>(a.dout, a.dos, b, h, i), a.head_dim, lane, g);
#pragma unroll
  for (int r = 0; r < kPerLane; ++r) dq[r] = 0;
  const A scale = static_cast<A>(a.scale), lse = static_cast<const A*>(a.lse)[row];
  const A delta = static_cast<const A*>(a.delta)[row];
  const int64_t last = a.causal ? min(a.kv_len - 1, i + a.kv_len - a.q_len) : a.kv_len - 1;
  for (int64_t j = 0; j <= last; ++j) {
    const T* k = row_of<T>(a.k, a.ks, b, hk, j);
    const A p = exp(dot_row<T>(q, k, a.head_dim, lane) * scale - lse);
    const A ds = p * (dot_row<T>(g, row_of<T>(a.v, a.vs, b, hk, j), a.head_dim, lane) - delta);
#pragma unroll
    for (int r = 0; r < kPerLane; ++r) {
      const int d = lane + 32 * r;
      if (d < a.head_dim) dq[r] += ds * load(k[d]);
    }
  }
  store_row(static_cast<T*>(a.dq) + b * a.dqs.batch + h * a.dqs.head + i * a.dqs.row, dq, scale, a.head_dim, lane);
}

template <typename T>
__global__ void simple_dkdv_kernel(const SimpleArgs a) {
  using A = AccType<T>;
  const int64_t key = warp_index();
  if (key >= a.batch * a.kv_heads * a.kv_len) return;
  const int lane = threadIdx.x % 32;
  const int64_t j = key % a.kv_len, bhk = key / a.kv_len, b = bhk / a.kv_heads, hk = bhk % a.kv_heads;
  A k[kPerLane], v[kPerLane], dk[kPerLane], dv[kPerLane];
  load_row(row_of<T>(a.k, a.ks, b, hk, j), a.head_dim, lane, k);
  load_row(row_of<T>(a.v, a.vs, b, hk, j), a.head_dim, lane, v);
#pragma unroll
  for (int r = 0; r < kPerLane; ++r) dk[r] = dv[r] = 0;
  const A scale = static_cast<A>(a.scale);
  const A* lse = static_cast<const A*>(a.lse);
  const A* delta = static_cast<const A*>(a.delta);
  const int64_t first = a.causal ? max(int64_t{0}, j - (a.kv_len - a.q_len)) : int64_t{0};
  for (int64_t h = hk * a.group; h < (hk + 1) * a.group; ++h) {
    const int64_t bh = b * a.heads + h;
    for (int64_t i = first; i < a.q_len; ++i) {
      const T* q = row_of<T>(a.q, a.qs, b, h, i);
      const T* g = row_of<T>(a.dout, a.dos, b, h, i);
      const A p = exp(dot_row<T>(k, q, a.head_dim, lane) * scale - lse[bh * a.q_len + i]);
      const A ds = p * (dot_row<T>(v, g, a.head_dim, lane) - delta[bh * a.q_len + i]);
#pragma unroll
      for (int r = 0; r < kPerLane; ++r) {
        const int d = lane + 32 * r;
        if (d < a.head_dim) {
          dv[r] += p * load(g[d]);
          dk[r] += ds * load(q[d]);
        }
      }
    }
  }
  store_row(static_cast<T*>(a.dk) + b * a.dks.batch + hk * a.dks.head + j * a.dks.row, dk, scale, a.head_dim, lane);
  store_row(static_cast<T*>(a.dv) + b * a.dvs.batch + hk * a.dvs.head + j * a.dvs.row, dv, A(1), a.head_dim, lane);
}

SimpleArgs simple_args(const AttentionArgs& a) {
  TESSERA_CHECK(a.head_dim <= kSimpleMaxHeadDim, "scaled_dot_product_attention: head_dim ", a.head_dim,
                " is not supported on CUDA for this dtype/layout (the tensor-core kernels take bf16/f16 with head_dim "
                "64 or 128; the general kernel takes head_dim <= ",
                kSimpleMaxHeadDim, ")");
  SimpleArgs s{};
  s.q = a.q;
  s.k = a.k;
  s.v = a.v;
  s.out = a.out;
  s.out_w = a.out;
  s.dout = a.dout;
  s.lse = a.lse;
  s.dq = a.dq;
  s.dk = a.dk;
  s.dv = a.dv;
  s.qs = a.q_strides;
  s.ks = a.k_strides;
  s.vs = a.v_strides;
  s.os = a.out_strides;
  s.dos = a.dout_strides;
  s.dqs = a.dq_strides;
  s.dks = a.dk_strides;
  s.dvs = a.dv_strides;
  s.batch = a.batch;
  s.heads = a.heads;
  s.kv_heads = a.kv_heads;
  s.group = a.heads / a.kv_heads;
  s.q_len = a.q_len;
  s.kv_len = a.kv_len;
  s.head_dim = static_cast<int>(a.head_dim);
  s.causal = a.causal;
  s.scale = a.scale;
  return s;
}

unsigned blocks_for_warps(int64_t warps) {
  return static_cast<unsigned>((warps + kWarpsPerBlock - 1) / kWarpsPerBlock);
}

}  // namespace

void launch_simple_forward(const AttentionArgs& a, cudaStream_t stream) {
  const SimpleArgs s = simple_args(a);
  const int64_t rows = a.batch * a.heads * a.q_len;
  if (rows == 0) return;
  cuda::cuda_float_dtype_switch(a.dtype, "scaled_dot_product_attention", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    simple_forward_kernel<T><<<blocks_for_warps(rows), kBlockThreads, 0, stream>>>(s);
    TESSERA_CUDA_LAUNCH_CHECK();
  });
}

void launch_simple_backward(const AttentionArgs& a, cudaStream_t stream) {
  SimpleArgs s = simple_args(a);
  const int64_t rows = a.batch * a.heads * a.q_len, keys = a.batch * a.kv_heads * a.kv_len;
  cuda::cuda_float_dtype_switch(a.dtype, "scaled_dot_product_attention backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const int device = cuda::current_device();
    const size_t delta_bytes = static_cast<size_t>(rows > 0 ? rows : 1) * sizeof(AccType<T>);
    s.delta = cuda_allocate(delta_bytes, device, stream);
    if (rows > 0) {
      simple_delta_kernel<T><<<blocks_for_warps(rows), kBlockThreads, 0, stream>>>(s);
      TESSERA_CUDA_LAUNCH_CHECK();
      simple_dq_kernel<T><<<blocks_for_warps(rows), kBlockThreads, 0, stream>>>(s);
      TESSERA_CUDA_LAUNCH_CHECK();
    }
    if (keys > 0) {
      simple_dkdv_kernel<T><<<blocks_for_warps(keys), kBlockThreads, 0, stream>>>(s);
      TESSERA_CUDA_LAUNCH_CHECK();
    }
    cuda_free(s.delta);
  });
}

}  // namespace tessera::kernels::attention
