// Rotary position embedding (RoPE) as a differentiable op, and its cos/sin tables.
//
// defines: rope, rope_tables, RopeTables
//
// rope(x, cos, sin): x [batch, seq, heads, head_dim] (head_dim even; any strides with a
// contiguous last dim, e.g. a slice of a fused qkv projection viewed as heads), cos and sin
// f32 [seq, head_dim / 2] (row t = the angles of x's position t; slice a table to start at
// the first position, which is how a KV-cache decoder rotates position p). Rotate-half
// convention (GPT-NeoX, Llama, torch implementations of `rotate_half`): with h = head_dim / 2,
//   out[..., :h] = x1 * cos - x2 * sin,   out[..., h:] = x2 * cos + x1 * sin
// where x1 = x[..., :h], x2 = x[..., h:]. The result is contiguous [batch, seq, heads,
// head_dim] in x's dtype. `inverse` rotates by the opposite angle.
// The tables are constants: they may not require a gradient. The gradient of x is the inverse
// rotation of the output gradient, itself a rope call, so derivatives of any order work.
//
// rope_tables(positions, head_dim, theta): cos/sin [positions, head_dim / 2] with angle
// p * theta^(-2i / head_dim), computed in double and rounded to f32 once.
#pragma once

#include "framework/core/tensor.h"

namespace tessera {

Tensor rope(const Tensor& x, const Tensor& cos, const Tensor& sin, bool inverse = false);

struct RopeTables {
  Tensor cos, sin;  // f32 [positions, head_dim / 2]
};
RopeTables rope_tables(int64_t positions, int64_t head_dim, double theta = 10000.0, Device device = Device::cpu());

}  // namespace tessera
