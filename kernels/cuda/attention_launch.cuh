// Host-side entry points of the attention kernel variants, shared by the dispatcher
// (attention.cu) and the translation units that instantiate them.
//
// defines: launch_forward, launch_backward (tensor-core variants, one instantiation per dtype,
//          head dim and causality in attention_fwd_d*.cu / attention_bwd_d*.cu),
//          launch_forward_sm90 (sm90a/attention_fwd.cu), launch_backward_dkdv_sm90
//          (sm90a/attention_bwd.cu), hopper_wgmma_usable (attention.cu),
//          launch_simple_forward, launch_simple_backward (attention_simple.cu),
//          set_dynamic_smem
#pragma once

#include <cuda_runtime.h>

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

// Hopper wgmma forward (kernels/cuda/sm90a/attention_fwd.cu, head_dim 64 and 128). Only where
// hopper_wgmma_usable() says so.
template <typename T, int HeadDim, bool IsCausal>
void launch_forward_sm90(const AttentionParams& p, cudaStream_t stream);
// Hopper wgmma dK/dV kernel (kernels/cuda/sm90a/attention_bwd.cu, head_dim 64 and 128): dk, dv and,
// with accumulate_dq, dS K added into p.dq_accum. Only where hopper_wgmma_usable() says so.
template <typename T, int HeadDim, bool IsCausal>
void launch_backward_dkdv_sm90(const AttentionParams& p, bool accumulate_dq, cudaStream_t stream);
// True on a compute capability 9.0 device unless TESSERA_ATTENTION_WGMMA=0 (the mma.sync
// kernels then run everywhere: for comparisons and as a fallback).
bool hopper_wgmma_usable();

// Any dtype and head_dim <= kSimpleMaxHeadDim; one warp per row, for tests and odd shapes.
constexpr int kSimpleMaxHeadDim = 256;
void launch_simple_forward(const AttentionArgs& a, cudaStream_t stream);
void launch_simple_backward(const AttentionArgs& a, cudaStream_t stream);

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
