// Flash attention: softmax(Q K^T * scale + mask) V without materialising the score matrix.
//
// defines: AttentionStrides, AttentionArgs, attention_forward_cpu, attention_backward_cpu,
//          attention_forward_cuda, attention_backward_cuda, attention_lse_dtype,
//          kAttentionCpuTileRows, kAttentionCpuTileCols
//
// Layout: q [batch, heads, q_len, head_dim], k and v [batch, kv_heads, kv_len, head_dim], out
// and the gradients like their operand; strides are in elements for the first three dims and
// the last dim is contiguous. heads must be a multiple of kv_heads (grouped-query attention:
// query head h reads kv head h / (heads / kv_heads)). lse [batch, heads, q_len] is contiguous
// and holds log(sum_j exp(s_ij)) of the scaled scores s = q k^T * scale; it is f64 for f64
// inputs and f32 otherwise (attention_lse_dtype).
//
// Causal masking is aligned bottom-right: query i attends to keys j <= i + (kv_len - q_len),
// so the last query sees every key (KV-cache decoding, speculative verification). A query that
// sees no key (causal with q_len > kv_len, or kv_len == 0) gets a zero output and lse = +inf,
// which makes its gradients zero.
//
// The forward keeps, per query row, a running max m, a running sum l and an unnormalised
// output over key tiles and stores only lse for the backward; the backward recomputes the
// probabilities tile by tile from lse (the algorithm is spelled out in kernels/cpu/attention.cpp
// and kernels/cuda/attention.cu). Inputs of every floating dtype accumulate in f32 (f64 for
// f64). The CPU kernels are deterministic (no reduction depends on the thread count). On CUDA,
// bf16/f16 with head_dim 64 or 128 run on the tensor cores (Hopper's wgmma and TMA on compute
// capability 9.0, mma.sync elsewhere or with TESSERA_ATTENTION_WGMMA=0); every other case runs on a simple
// one-warp-per-row kernel meant for tests and odd shapes, not speed. The CUDA backward
// accumulates dq with float atomics unless `deterministic` is set, which computes dq in a
// separate pass (bitwise reproducible, about a third more arithmetic).
#pragma once

#include <cstdint>

#include "framework/core/dtype.h"

namespace tessera::kernels {

// Tile sizes of the CPU kernels (rows = queries, cols = keys); tests use lengths that are not
// multiples of them.
constexpr int64_t kAttentionCpuTileRows = 32;
constexpr int64_t kAttentionCpuTileCols = 32;

// Element strides of a [batch, heads, len, head_dim] operand (head_dim stride is 1).
struct AttentionStrides {
  int64_t batch = 0, head = 0, row = 0;
};

struct AttentionArgs {
  DType dtype = DType::f32;
  int64_t batch = 0, heads = 0, kv_heads = 0, q_len = 0, kv_len = 0, head_dim = 0;
  bool causal = false;
  double scale = 1.0;  // > 0

  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  AttentionStrides q_strides, k_strides, v_strides;
  void* out = nullptr;  // written by the forward, read by the backward
  AttentionStrides out_strides;
  void* lse = nullptr;  // written by the forward, read by the backward

  // Backward only.
  const void* dout = nullptr;
  AttentionStrides dout_strides;
  void* dq = nullptr;
  void* dk = nullptr;
  void* dv = nullptr;
  AttentionStrides dq_strides, dk_strides, dv_strides;
  bool deterministic = false;  // CUDA: dq without float atomics (the CPU is always deterministic)
};

inline DType attention_lse_dtype(DType dtype) { return dtype == DType::f64 ? DType::f64 : DType::f32; }

void attention_forward_cpu(const AttentionArgs& args);
void attention_backward_cpu(const AttentionArgs& args);
#ifdef TESSERA_WITH_CUDA
// Scratch memory (dq accumulator, row terms) comes from the caching allocator on `stream`.
void attention_forward_cuda(const AttentionArgs& args, void* stream);
void attention_backward_cuda(const AttentionArgs& args, void* stream);
#endif

}  // namespace tessera::kernels
