// Naive attention references for the flash-attention tests (CPU and GPU).
//
// defines: AttentionProblem, AttentionResult, attention_reference, attention_reference_lowp,
//          round_to
//
// Both materialise the full score matrix of each head and follow the textbook formulas:
//   s = q k^T * scale (masked: -inf), p = softmax(s), out = p v, lse = log sum exp(s)
//   dp = dout v^T, ds = p * (dp - rowsum(p * dp)), dq = ds k * scale, dk = ds^T q * scale,
//   dv = p^T dout   (dk, dv summed over the query heads that share a kv head)
// with the bottom-right causal mask of kernels/attention.h (query i sees key j <= i + kv_len -
// q_len; a query that sees nothing gets out = 0, lse = +inf and zero gradients).
//
// attention_reference computes in float64 on the values as given: the ground truth.
// attention_reference_lowp is "what PyTorch would do in bf16/f16": inputs rounded to the low
// precision type, math in f32, and every intermediate matrix (s, p, out, dp, ds and the
// gradients) rounded to the low precision type, as PyTorch's math backend stores them. Its
// distance from the float64 result is the yardstick for a low precision kernel's error.
#pragma once

#include <cstdint>
#include <vector>

#include "framework/core/dtype.h"

namespace tessera::testing {

struct AttentionProblem {
  int64_t batch = 1, heads = 1, kv_heads = 1, q_len = 1, kv_len = 1, head_dim = 1;
  bool causal = false;
  double scale = 1.0;
  // Contiguous [batch, heads, q_len, head_dim] (q, dout) and [batch, kv_heads, kv_len,
  // head_dim] (k, v). dout may be empty: then only the forward is computed.
  std::vector<double> q, k, v, dout;
};

struct AttentionResult {
  std::vector<double> out, lse, dq, dk, dv;
};

AttentionResult attention_reference(const AttentionProblem& p);
// `dtype` is bf16 or f16.
AttentionResult attention_reference_lowp(const AttentionProblem& p, DType dtype);

// x rounded to the nearest value of `dtype` (f64: unchanged).
double round_to(double x, DType dtype);

}  // namespace tessera::testing
