// CUDA fused dropout (kernels/dropout.h); kernels/cpu/dropout.cpp is the reference.
//
// Each thread handles groups of four consecutive elements: one Philox block, four lanes. When
// the buffers are aligned the group moves as one vector access (16 bytes for f32, 8 for bf16).
#include "kernels/cuda/common.cuh"
#include "kernels/dropout.h"
#include "kernels/philox.h"

namespace tessera::kernels {
namespace {

using cuda::AccType;
using cuda::load;
using cuda::store;
using cuda::Vec;

template <typename T, bool Vectorized>
__global__ void dropout_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, float keep_threshold,
                               AccType<T> scale, uint64_t seed, uint64_t offset) {
  using A = AccType<T>;
  const int64_t groups = (n + 3) / 4;
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const PhiloxBlock bits = philox4x32(seed, offset + static_cast<uint64_t>(g));
    if (Vectorized && 4 * g + 4 <= n) {
      const Vec<T, 4> in = reinterpret_cast<const Vec<T, 4>*>(x)[g];
      Vec<T, 4> out;
#pragma unroll
      for (int lane = 0; lane < 4; ++lane)
        out.v[lane] = store<T>(uniform_from_bits(bits.x[lane]) < keep_threshold ? load(in.v[lane]) * scale : A(0));
      reinterpret_cast<Vec<T, 4>*>(y)[g] = out;
    } else {
      for (int lane = 0; lane < 4; ++lane) {
        const int64_t i = 4 * g + lane;
        if (i >= n) break;
        y[i] = store<T>(uniform_from_bits(bits.x[lane]) < keep_threshold ? load(x[i]) * scale : A(0));
      }
    }
  }
}

}  // namespace

void dropout_cuda(DType dtype, const void* x, void* out, int64_t n, float keep_threshold, double scale, uint64_t seed,
                  uint64_t offset, void* stream) {
  if (n == 0) return;
  cuda::cuda_float_dtype_switch(dtype, "dropout", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = AccType<T>;
    const int64_t groups = (n + 3) / 4;
    const auto s = cuda::stream_of(stream);
    const auto px = static_cast<const T*>(x);
    auto py = static_cast<T*>(out);
    const bool vectorized = reinterpret_cast<uintptr_t>(x) % sizeof(Vec<T, 4>) == 0 &&
                            reinterpret_cast<uintptr_t>(out) % sizeof(Vec<T, 4>) == 0;
    if (vectorized) {
      dropout_kernel<T, true><<<cuda::memory_bound_blocks(groups), cuda::kThreads, 0, s>>>(
          px, py, n, keep_threshold, static_cast<A>(scale), seed, offset);
    } else {
      dropout_kernel<T, false><<<cuda::memory_bound_blocks(groups), cuda::kThreads, 0, s>>>(
          px, py, n, keep_threshold, static_cast<A>(scale), seed, offset);
    }
    TESSERA_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace tessera::kernels
