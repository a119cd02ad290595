// Host-side entry points of the attention kernel variants, shared by the dispatcher
// (attention.cu) and the translation units that instantiate them.
//
// defines: launch_forward, launch_backward (tensor-core variants, one instantiation per dtype,
//          head dim and causality in attention_fwd_d*.cu / attention_bwd_d*.cu),
//          launch_simple_forward, launch_simple_backward (attention_simple.cu),
//          set_dynamic_smem
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "framework/core/cuda_check.h"
#include "kernels/attention.h"
#include "kernels/cuda/attention_common.cuh"

namespace tessera::kernels::attention {

template <typename T, int HeadDim, bool IsCausal>
void launch_forward(const AttentionParams& p, cudaStream_t stream);

// Writes dk, dv and dq (p.dq); uses p.delta and, unless deterministic, p.dq_accum (zeroed).
template <typename T, int HeadDim, bool IsCausal>
void launch_backward(const AttentionParams& p, bool deterministic, cudaStream_t stream);

// Any dtype and head_dim <= kSimpleMaxHeadDim; one warp per row, for tests and odd shapes.
constexpr int kSimpleMaxHeadDim = 256;
void launch_simple_forward(const AttentionArgs& a, cudaStream_t stream);
void launch_simple_backward(const AttentionArgs& a, cudaStream_t stream);

// The grid of a kernel whose blocks are (batch, head) pairs times tiles along a sequence, in
// groups of G pairs: x = the G pairs of a group, y = the tiles, z = the groups, so that all
// tiles of a group's pairs are launched before the next group's (the kernels read their pair
// as blockIdx.z * gridDim.x + blockIdx.x and return when it is past the last). Launched the
// other way round (every pair's first tile, then every pair's second, ...), the blocks in
// flight touch every pair's data: at (2,16,8192,128) the backward's dq accumulator alone is
// 134 MB, 2.7x the L2. G is the most pairs whose working set (bytes_per_pair) fits in half the
// L2, but at least enough that one group's blocks outnumber the SMs `tail_factor` times (a
// causal kernel's heaviest tiles are several times its average: a small last group whose
// heaviest blocks start late would leave the SMs idle at the end). `requested` > 0 sets G.
inline dim3 grouped_grid(int pairs, int tiles, int64_t bytes_per_pair, int tail_factor, int requested) {
  int device = 0, l2 = 0, sms = 0;
  TESSERA_CUDA_CHECK(cudaGetDevice(&device));
  TESSERA_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
  TESSERA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  int64_t g = requested;
  if (g <= 0) {
    const int64_t fit = l2 / 2 / std::max<int64_t>(1, bytes_per_pair);
    const int64_t fill = (int64_t{tail_factor} * sms + tiles - 1) / std::max(1, tiles);
    g = std::max(fit, fill);
  }
  g = std::clamp<int64_t>(g, 1, std::max(1, pairs));
  const int64_t groups = (pairs + g - 1) / g;
  return dim3(static_cast<unsigned>(g), static_cast<unsigned>(tiles), static_cast<unsigned>(groups));
}

// Lets `Kernel` use `bytes` of dynamic shared memory on the current device (once per device
// and kernel: the attribute is per device).
template <auto Kernel>
void set_dynamic_smem(int bytes) {
  static std::atomic<uint64_t> configured{0};
  int device = 0;
  TESSERA_CUDA_CHECK(cudaGetDevice(&device));
  const uint64_t bit = uint64_t{1} << (device & 63);
  if (configured.load(std::memory_order_acquire) & bit) return;
  TESSERA_CUDA_CHECK(cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  configured.fetch_or(bit, std::memory_order_acq_rel);
}

}  // namespace tessera::kernels::attention
