// CUDA random fills (kernels/random.h); the same formulas as kernels/cpu/random.cpp.
#include "kernels/cuda/common.cuh"
#include "kernels/philox.h"
#include "kernels/random.h"

namespace tessera::kernels {
namespace {

template <typename T>
__global__ void random_fill_kernel(RandomKind kind, T* out, int64_t n, uint64_t seed, uint64_t offset, double a,
                                   double b) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double v;
    switch (kind) {
      case RandomKind::uniform: v = a + (b - a) * random_uniform_at(seed, offset, i); break;
      case RandomKind::normal: v = a + b * random_normal_at(seed, offset, i); break;
      case RandomKind::bernoulli: v = random_uniform_at(seed, offset, i) < static_cast<float>(a) ? 1.0 : 0.0; break;
      default: v = a + floor(static_cast<double>(random_uniform_at(seed, offset, i)) * (b - a)); break;
    }
    out[i] = cuda::cast_value<T>(v);
  }
}

}  // namespace

void random_fill_cuda(RandomKind kind, DType dtype, void* dst, int64_t n, uint64_t seed, uint64_t offset, double a,
                      double b, void* stream) {
  if (n == 0) return;
  cuda::cuda_dtype_switch(dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    random_fill_kernel<T><<<cuda::blocks_for(n), cuda::kThreads, 0, cuda::stream_of(stream)>>>(
        kind, static_cast<T*>(dst), n, seed, offset, a, b);
    TESSERA_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace tessera::kernels
