// Attention: softmax(q k^T * scale) v over the last two dims, with flash-attention kernels.
//
// defines: tessera::scaled_dot_product_attention, AttentionOutputs, attention_kernel_args
//
// q [batch, heads, q_len, head_dim]; k, v [batch, kv_heads, kv_len, head_dim] with heads a
// multiple of kv_heads (grouped-query attention); the result has q's shape. Any strides are
// accepted as long as the last dim is contiguous (otherwise the operand is copied), so a
// [batch, len, heads, head_dim] projection can be passed permuted without a copy.
// `causal` masks key j for query i when j > i + (kv_len - q_len): the mask is aligned to the
// bottom-right corner, so decoding with a KV cache (q_len < kv_len) sees the whole prefix. A
// query that sees no key gets zeros. `scale` 0 means 1/sqrt(head_dim).
//
// Differentiable in q, k and v once: the backward runs the flash-attention backward kernels,
// which are not themselves differentiable, so backward with create_graph=true throws.
// `deterministic_backward` makes the CUDA backward bitwise reproducible (dq in its own pass
// instead of float atomics); the CPU backward is always deterministic.
//
// Devices and dtypes: CPU takes f64, f32, bf16, f16 (tiled kernel, f32 accumulation, f64 for
// f64). CUDA runs bf16/f16 with head_dim 64 or 128 on the tensor cores; f32, f64 and other
// head dims run on a simple CUDA kernel that is correct but slow (tests and odd shapes).
#pragma once

#include "framework/core/tensor.h"
#include "kernels/attention.h"

namespace tessera {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    double scale = 0.0, bool deterministic_backward = false);

// The tensors the kernels write or read besides q, k, v; undefined ones are left null.
struct AttentionOutputs {
  Tensor out{}, lse{}, dout{}, dq{}, dk{}, dv{};
};

// The kernel arguments (sizes, pointers, strides) for q, k, v [batch, heads, len, head_dim]
// with unit stride in the last dim, as the op passes them; benchmarks and kernel tests that
// call kernels/attention.h directly build them here too. `scale` is used as given.
kernels::AttentionArgs attention_kernel_args(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                             double scale, const AttentionOutputs& tensors = {});

}  // namespace tessera
