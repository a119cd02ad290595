// Rotary position embedding (RoPE) in the "rotate half" convention of GPT-NeoX and Llama.
//
// defines: RopeArgs, rope_cpu, rope_cuda
//
// x is [batch, seq, heads, head_dim] with element strides for the first three dims and a
// contiguous last dim (a slice of a fused qkv projection is accepted as it is); out is
// contiguous [batch, seq, heads, head_dim]. cos and sin are f32 tables [seq, head_dim / 2] with
// row stride `table_stride` (row t holds the angles of sequence position t; the caller slices
// the table to the absolute positions). With h = head_dim / 2 and i < h:
//   out[i]     = x[i]     * cos[t][i] - x[i + h] * sin[t][i]
//   out[i + h] = x[i + h] * cos[t][i] + x[i]     * sin[t][i]
// `inverse` negates the angle (sin -> -sin): the rotation back, which is the backward pass.
// Arithmetic in float (double for f64), one rounding per output element; the CPU and CUDA
// kernels do the same operations in the same order.
#pragma once

#include <cstdint>

#include "framework/core/dtype.h"

namespace tessera::kernels {

struct RopeArgs {
  DType dtype = DType::f32;
  int64_t batch = 0, seq = 0, heads = 0, head_dim = 0;  // head_dim even
  const void* x = nullptr;
  int64_t x_batch_stride = 0, x_seq_stride = 0, x_head_stride = 0;
  void* out = nullptr;  // contiguous
  const float* cos = nullptr;
  const float* sin = nullptr;
  int64_t table_stride = 0;  // elements between table rows
  bool inverse = false;
};

void rope_cpu(const RopeArgs& args);
#ifdef TESSERA_WITH_CUDA
void rope_cuda(const RopeArgs& args, void* stream);
#endif

}  // namespace tessera::kernels
