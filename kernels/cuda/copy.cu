// CUDA copy and fill kernels (kernels/copy.h).
#include "kernels/copy.h"
#include "kernels/cuda/common.cuh"

namespace tessera::kernels {
namespace {

template <typename S, typename D>
__global__ void copy_contiguous_kernel(const S* __restrict__ src, D* __restrict__ dst, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = cuda::cast_value<D>(src[i]);
}

// Contiguous cast moving N elements per access, N chosen so the wider side is one 16-byte
// access (bf16 -> f32: 8-byte loads, 16-byte stores; every warp access fully coalesced); each
// thread keeps two vectors in flight.
template <typename S, typename D, int N>
__global__ void cast_vector_kernel(const S* __restrict__ src, D* __restrict__ dst, int64_t n) {
  using VS = cuda::Vec<S, N>;
  using VD = cuda::Vec<D, N>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t vectors = n / N;
  const VS* in = reinterpret_cast<const VS*>(src);
  VD* out = reinterpret_cast<VD*>(dst);
  int64_t v = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  for (; v + stride < vectors; v += 2 * stride) {
    const VS a = in[v], b = in[v + stride];
    VD x, y;
#pragma unroll
    for (int k = 0; k < N; ++k) {
      x.v[k] = cuda::cast_value<D>(a.v[k]);
      y.v[k] = cuda::cast_value<D>(b.v[k]);
    }
    out[v] = x;
    out[v + stride] = y;
  }
  if (v < vectors) {
    const VS a = in[v];
    VD x;
#pragma unroll
    for (int k = 0; k < N; ++k) x.v[k] = cuda::cast_value<D>(a.v[k]);
    out[v] = x;
  }
  for (int64_t i = vectors * N + blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride)
    dst[i] = cuda::cast_value<D>(src[i]);
}

template <typename S, typename D>
__global__ void copy_strided_kernel(const S* __restrict__ src, Layout sl, D* __restrict__ dst, Layout dl,
                                    int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[dl.offset_of(i)] = cuda::cast_value<D>(src[sl.offset_of(i)]);
}

template <typename T>
__global__ void fill_kernel(T* __restrict__ dst, int64_t n, T value) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = value;
}

}  // namespace

void copy_strided_cuda(DType src_dtype, const void* src, Layout src_layout, DType dst_dtype, void* dst,
                       Layout dst_layout, void* stream) {
  Layout layouts[2] = {src_layout, dst_layout};
  coalesce_layouts(layouts, 2);
  const int64_t n = layouts[0].numel();
  if (n == 0) return;
  cudaStream_t s = cuda::stream_of(stream);
  const bool contiguous = layouts[0].ndim == 1 && layouts[0].strides[0] == 1 && layouts[1].strides[0] == 1;
  if (contiguous && src_dtype == dst_dtype) {
    TESSERA_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * dtype_size(src_dtype),
                                       cudaMemcpyDeviceToDevice, s));
    return;
  }
  cuda::cuda_dtype_switch(src_dtype, [&](auto* s_tag) {
    using S = std::remove_pointer_t<decltype(s_tag)>;
    cuda::cuda_dtype_switch(dst_dtype, [&](auto* d_tag) {
      using D = std::remove_pointer_t<decltype(d_tag)>;
      constexpr int N = sizeof(S) > sizeof(D) ? cuda::vec_width<S>() : cuda::vec_width<D>();
      constexpr bool vectorizable = N > 1;
      const auto aligned = [](const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; };
      if (contiguous && vectorizable && aligned(src, sizeof(S) * N) && aligned(dst, sizeof(D) * N)) {
        cast_vector_kernel<S, D, N><<<cuda::memory_bound_blocks(n / (2 * N) + 1), cuda::kThreads, 0, s>>>(
            static_cast<const S*>(src), static_cast<D*>(dst), n);
      } else if (contiguous) {
        copy_contiguous_kernel<S, D><<<cuda::blocks_for(n), cuda::kThreads, 0, s>>>(
            static_cast<const S*>(src), static_cast<D*>(dst), n);
      } else {
        copy_strided_kernel<S, D><<<cuda::blocks_for(n), cuda::kThreads, 0, s>>>(
            static_cast<const S*>(src), layouts[0], static_cast<D*>(dst), layouts[1], n);
      }
      TESSERA_CUDA_LAUNCH_CHECK();
    });
  });
}

void fill_cuda(DType dtype, void* dst, int64_t n, double value, void* stream) {
  if (n == 0) return;
  cuda::cuda_dtype_switch(dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T v;
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      v = __float2bfloat16_rn(static_cast<float>(value));
    } else if constexpr (std::is_same_v<T, __half>) {
      v = __float2half_rn(static_cast<float>(value));
    } else {
      v = static_cast<T>(value);
    }
    fill_kernel<T><<<cuda::blocks_for(n), cuda::kThreads, 0, cuda::stream_of(stream)>>>(static_cast<T*>(dst), n, v);
    TESSERA_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace tessera::kernels
