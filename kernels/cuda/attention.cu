// CUDA flash attention (kernels/attention.h): picks a kernel variant and runs the backward's
// helper passes.
//
// The algorithm (FlashAttention-2). Forward, per tile of query rows, over tiles of keys:
//   S = Q K^T;  m_new = max(m, rowmax S);  P = exp(S scale - m_new scale)
//   l = l exp((m - m_new) scale) + rowsum P;  O = O exp((m - m_new) scale) + P V
// and at the end O / l; only lse = m scale + log l is stored per row (never the S x S
// probabilities). Backward: delta = rowsum(dO * O) (attention_delta_kernel below), then per
// tile P = exp(S scale - lse) is recomputed and
//   dP = dO V^T,  dS = P (dP - delta),  dV += P^T dO,  dK += dS^T Q scale,  dQ += dS K scale.
// The tensor-core kernels (mma.sync m16n8k16 with ldmatrix and cp.async double buffering,
// swizzled shared memory) are in attention_forward.cuh and attention_backward.cuh, one
// translation unit per head dim; attention_simple.cu takes everything else.
//
// Backward passes on the tensor-core path:
//   default:        delta -> dK/dV kernel that also adds dS K into an f32 dq accumulator with
//                   atomics -> convert (scale, cast) into dq. On compute capability 9.0 the
//                   dK/dV kernel is the wgmma one of sm90a/attention_bwd.cu.
//   deterministic:  delta -> dK/dV kernel -> a separate dQ kernel that walks the key tiles of
//                   its query rows (no atomics; bitwise reproducible)
// Scratch (delta, the accumulator) comes from the caching allocator on the stream.
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "framework/core/allocator.h"
#include "kernels/attention.h"
#include "kernels/cuda/attention_launch.cuh"
#include "kernels/cuda/common.cuh"

namespace tessera::kernels {
namespace {

using attention::AttentionParams;
constexpr const char* kOp = "scaled_dot_product_attention";

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// The tensor-core kernels move rows in 16-byte chunks: rows and the starts of batches and
// heads (where there is more than one) must be 8-element aligned.
bool strides_aligned(const AttentionStrides& s, int64_t batch, int64_t heads) {
  return s.row % 8 == 0 && (batch == 1 || s.batch % 8 == 0) && (heads == 1 || s.head % 8 == 0);
}

bool tensor_core_path(const AttentionArgs& a, bool backward) {
  if (a.dtype != DType::bf16 && a.dtype != DType::f16) return false;
  if (a.head_dim != 64 && a.head_dim != 128) return false;
  bool ok = aligned16(a.q) && aligned16(a.k) && aligned16(a.v) && aligned16(a.out) &&
            strides_aligned(a.q_strides, a.batch, a.heads) && strides_aligned(a.k_strides, a.batch, a.kv_heads) &&
            strides_aligned(a.v_strides, a.batch, a.kv_heads) && strides_aligned(a.out_strides, a.batch, a.heads);
  if (backward)
    ok = ok && aligned16(a.dout) && aligned16(a.dq) && aligned16(a.dk) && aligned16(a.dv) &&
         strides_aligned(a.dout_strides, a.batch, a.heads) && strides_aligned(a.dq_strides, a.batch, a.heads) &&
         strides_aligned(a.dk_strides, a.batch, a.kv_heads) && strides_aligned(a.dv_strides, a.batch, a.kv_heads);
  return ok;
}

void check_sizes(const AttentionArgs& a) {
  constexpr int64_t kMaxLen = int64_t{1} << 30, kMaxGridY = 65535 * 32;
  TESSERA_CHECK(a.heads > 0 && a.kv_heads > 0 && a.heads % a.kv_heads == 0, kOp, ": ", a.heads,
                " query heads are not a multiple of ", a.kv_heads, " kv heads");
  TESSERA_CHECK(a.q_len < kMaxLen && a.kv_len < kMaxLen && a.q_len < kMaxGridY && a.kv_len < kMaxGridY, kOp,
                ": sequence lengths ", a.q_len, " and ", a.kv_len, " exceed the CUDA kernels' limit of ", kMaxGridY);
  TESSERA_CHECK(a.batch * a.heads < (int64_t{1} << 31), kOp, ": batch * heads = ", a.batch * a.heads, " is too large");
  TESSERA_CHECK(a.scale > 0.0, kOp, ": scale must be positive, got ", a.scale);
}

AttentionParams params_of(const AttentionArgs& a) {
  AttentionParams p{};
  p.q = a.q;
  p.k = a.k;
  p.v = a.v;
  p.out = a.out;
  p.lse = static_cast<float*>(a.lse);
  p.q_batch = a.q_strides.batch, p.q_head = a.q_strides.head, p.q_row = a.q_strides.row;
  p.k_batch = a.k_strides.batch, p.k_head = a.k_strides.head, p.k_row = a.k_strides.row;
  p.v_batch = a.v_strides.batch, p.v_head = a.v_strides.head, p.v_row = a.v_strides.row;
  p.o_batch = a.out_strides.batch, p.o_head = a.out_strides.head, p.o_row = a.out_strides.row;
  p.batch = static_cast<int>(a.batch);
  p.heads = static_cast<int>(a.heads);
  p.kv_heads = static_cast<int>(a.kv_heads);
  p.group = static_cast<int>(a.heads / a.kv_heads);
  p.q_len = static_cast<int>(a.q_len);
  p.kv_len = static_cast<int>(a.kv_len);
  p.causal_offset = static_cast<int>(a.kv_len - a.q_len);
  p.scale = static_cast<float>(a.scale);
  p.scale_log2 = static_cast<float>(a.scale * 1.4426950408889634);
  p.dout = a.dout;
  p.do_batch = a.dout_strides.batch, p.do_head = a.dout_strides.head, p.do_row = a.dout_strides.row;
  p.dq = a.dq;
  p.dk = a.dk;
  p.dv = a.dv;
  p.dq_batch = a.dq_strides.batch, p.dq_head = a.dq_strides.head, p.dq_row = a.dq_strides.row;
  p.dk_batch = a.dk_strides.batch, p.dk_head = a.dk_strides.head, p.dk_row = a.dk_strides.row;
  p.dv_batch = a.dv_strides.batch, p.dv_head = a.dv_strides.head, p.dv_row = a.dv_strides.row;
  return p;
}

// delta[row] = sum_d dout[row, d] * out[row, d]: HeadDim / 8 threads per row, 16 bytes each.
template <typename T, int HeadDim>
__global__ void attention_delta_kernel(const AttentionParams p) {
  constexpr int kLanes = HeadDim / 8;
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kLanes;
  const int c = threadIdx.x % kLanes;
  const int64_t rows = static_cast<int64_t>(p.batch) * p.heads * p.q_len;
  float sum = 0.f;
  if (row < rows) {
    const int64_t i = row % p.q_len, bh = row / p.q_len, b = bh / p.heads, h = bh % p.heads;
    using V = cuda::Vec<T, 8>;
    const V o = *reinterpret_cast<const V*>(static_cast<const T*>(p.out) + b * p.o_batch + h * p.o_head +
                                            i * p.o_row + c * 8);
    const V g = *reinterpret_cast<const V*>(static_cast<const T*>(p.dout) + b * p.do_batch + h * p.do_head +
                                            i * p.do_row + c * 8);
#pragma unroll
    for (int e = 0; e < 8; ++e) sum += cuda::load(o.v[e]) * cuda::load(g.v[e]);
  }
#pragma unroll
  for (int offset = kLanes / 2; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (row < rows && c == 0) p.delta[row] = sum;
}

// dq = accumulator * scale, cast: 8 elements (one 16-byte store) per thread.
template <typename T, int HeadDim>
__global__ void attention_dq_convert_kernel(const AttentionParams p) {
  constexpr int kChunks = HeadDim / 8;
  const int64_t chunk = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (chunk >= static_cast<int64_t>(p.batch) * p.heads * p.q_len * kChunks) return;
  const int64_t row = chunk / kChunks, i = row % p.q_len, bh = row / p.q_len, b = bh / p.heads, h = bh % p.heads;
  const int c = static_cast<int>(chunk % kChunks);
  const float4* src = reinterpret_cast<const float4*>(p.dq_accum + row * HeadDim + c * 8);
  const float4 x0 = src[0], x1 = src[1];
  const float x[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
  cuda::Vec<T, 8> out;
#pragma unroll
  for (int e = 0; e < 8; ++e) out.v[e] = cuda::store<T>(x[e] * p.scale);
  *reinterpret_cast<cuda::Vec<T, 8>*>(static_cast<T*>(p.dq) + b * p.dq_batch + h * p.dq_head + i * p.dq_row + c * 8) =
      out;
}

// Calls fn.template operator()<T, HeadDim>() for the tensor-core variant of `a`.
template <typename Fn>
void tensor_core_switch(const AttentionArgs& a, Fn&& fn) {
  auto with_dim = [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (a.head_dim == 64) {
      fn.template operator()<T, 64>();
    } else {
      fn.template operator()<T, 128>();
    }
  };
  if (a.dtype == DType::bf16) {
    with_dim(static_cast<__nv_bfloat16*>(nullptr));
  } else {
    with_dim(static_cast<__half*>(nullptr));
  }
}

}  // namespace

// Declared in attention_launch.cuh; asked by launch_forward and launch_backward.
bool attention::hopper_wgmma_usable() {
  static const bool enabled = [] {
    const char* env = std::getenv("TESSERA_ATTENTION_WGMMA");
    return env == nullptr || std::strcmp(env, "0") != 0;
  }();
  if (!enabled) return false;
  // Per device: 0 not asked yet, 1 compute capability 9.0 (the sm_90a kernels run), 2 anything else.
  static std::atomic<int> known[64];
  const int device = cuda::current_device();
  std::atomic<int>& slot = known[device & 63];
  if (const int k = slot.load(std::memory_order_relaxed); k != 0) return k == 1;
  int major = 0, minor = 0;
  TESSERA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  TESSERA_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  const bool hopper = major == 9 && minor == 0;
  slot.store(hopper ? 1 : 2, std::memory_order_relaxed);
  return hopper;
}

void attention_forward_cuda(const AttentionArgs& a, void* stream_ptr) {
  if (a.batch * a.heads * a.q_len == 0) return;
  check_sizes(a);
  const cudaStream_t stream = cuda::stream_of(stream_ptr);
  if (!tensor_core_path(a, false)) {
    attention::launch_simple_forward(a, stream);
    return;
  }
  const AttentionParams p = params_of(a);
  tensor_core_switch(a, [&]<typename T, int HeadDim>() {
    if (a.causal) {
      attention::launch_forward<T, HeadDim, true>(p, stream);
    } else {
      attention::launch_forward<T, HeadDim, false>(p, stream);
    }
  });
}

void attention_backward_cuda(const AttentionArgs& a, void* stream_ptr) {
  if (a.batch * a.heads * a.q_len == 0 && a.batch * a.kv_heads * a.kv_len == 0) return;
  check_sizes(a);
  const cudaStream_t stream = cuda::stream_of(stream_ptr);
  if (!tensor_core_path(a, true)) {
    attention::launch_simple_backward(a, stream);
    return;
  }
  AttentionParams p = params_of(a);
  const int device = cuda::current_device();
  const int64_t rows = a.batch * a.heads * a.q_len;
  p.delta = static_cast<float*>(cuda_allocate(static_cast<size_t>(rows > 0 ? rows : 1) * sizeof(float), device, stream));
  if (!a.deterministic) {
    const size_t accum_bytes = static_cast<size_t>(rows > 0 ? rows * a.head_dim : 1) * sizeof(float);
    p.dq_accum = static_cast<float*>(cuda_allocate(accum_bytes, device, stream));
    TESSERA_CUDA_CHECK(cudaMemsetAsync(p.dq_accum, 0, accum_bytes, stream));
  }
  tensor_core_switch(a, [&]<typename T, int HeadDim>() {
    constexpr int kThreads = 256;
    if (rows > 0) {
      const int64_t threads = rows * (HeadDim / 8);
      attention_delta_kernel<T, HeadDim><<<static_cast<unsigned>((threads + kThreads - 1) / kThreads), kThreads, 0,
                                           stream>>>(p);
      TESSERA_CUDA_LAUNCH_CHECK();
    }
    if (a.causal) {
      attention::launch_backward<T, HeadDim, true>(p, a.deterministic, stream);
    } else {
      attention::launch_backward<T, HeadDim, false>(p, a.deterministic, stream);
    }
    if (!a.deterministic && rows > 0) {
      const int64_t threads = rows * (HeadDim / 8);
      attention_dq_convert_kernel<T, HeadDim><<<static_cast<unsigned>((threads + kThreads - 1) / kThreads), kThreads,
                                                0, stream>>>(p);
      TESSERA_CUDA_LAUNCH_CHECK();
    }
  });
  cuda_free(p.delta);
  if (p.dq_accum != nullptr) cuda_free(p.dq_accum);
}

}  // namespace tessera::kernels
