// CUDA gradient unscaling with the non-finite check (kernels/amp.h); kernels/cpu/amp.cpp is
// the reference. Tensor pointers travel in a table passed by value (__grid_constant__); block b
// handles chunk b - block_start[t] of tensor t. A thread that meets a non-finite value stores
// 1.0f into the flag; every such store writes the same value, so the result is deterministic.
#include <climits>

#include "kernels/amp.h"
#include "kernels/cuda/common.cuh"

namespace tessera::kernels {
namespace {

constexpr int64_t kChunk = 8192;
constexpr int kMax = kMaxUnscaleTensors;

struct UnscaleTable {
  void* data[kMax];
  int64_t numel[kMax];
  int32_t block_start[kMax + 1];
  int32_t count;
};
static_assert(sizeof(UnscaleTable) + 256 < 32764, "UnscaleTable exceeds the kernel-argument limit");

template <typename T>
__global__ void __launch_bounds__(cuda::kThreads) unscale_kernel(const __grid_constant__ UnscaleTable table,
                                                                 double inv_scale, float* found_inf) {
  using A = cuda::AccType<T>;
  int lo = 0, hi = table.count - 1;
  const int32_t block = static_cast<int32_t>(blockIdx.x);
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (table.block_start[mid] <= block) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const int64_t begin = static_cast<int64_t>(block - table.block_start[lo]) * kChunk;
  const int64_t end = min(begin + kChunk, table.numel[lo]);
  T* x = static_cast<T*>(table.data[lo]);
  const A s = static_cast<A>(inv_scale);
  bool bad = false;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const A v = cuda::load(x[i]) * s;
    bad |= !isfinite(v);
    x[i] = cuda::store<T>(v);
  }
  if (__syncthreads_or(bad) && threadIdx.x == 0) *found_inf = 1.0f;
}

}  // namespace

void unscale_check_cuda(DType dtype, void* const* data, const int64_t* numels, int64_t count, double inv_scale,
                        float* found_inf, void* stream) {
  cuda::cuda_float_dtype_switch(dtype, "unscale gradients", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    UnscaleTable table;
    table.count = 0;
    int64_t blocks = 0;
    auto flush = [&] {
      if (table.count == 0) return;
      table.block_start[table.count] = static_cast<int32_t>(blocks);
      unscale_kernel<T><<<static_cast<unsigned>(blocks), cuda::kThreads, 0, cuda::stream_of(stream)>>>(
          table, inv_scale, found_inf);
      TESSERA_CUDA_LAUNCH_CHECK();
      table.count = 0;
      blocks = 0;
    };
    for (int64_t t = 0; t < count; ++t) {
      if (numels[t] == 0) continue;
      const int64_t chunks = (numels[t] + kChunk - 1) / kChunk;
      TESSERA_ASSERT(chunks < INT32_MAX, "tensor of ", numels[t], " elements is too large for one launch");
      if (table.count == kMax || blocks + chunks >= INT32_MAX) flush();
      const int slot = table.count++;
      table.data[slot] = data[t];
      table.numel[slot] = numels[t];
      table.block_start[slot] = static_cast<int32_t>(blocks);
      blocks += chunks;
    }
    flush();
  });
}

}  // namespace tessera::kernels
