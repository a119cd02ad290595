// Strided layouts passed from the ops layer to kernels (raw sizes and strides, no tensors).
//
// defines: tessera::kernels::Layout, kMaxDims, coalesce_layouts
//
// A Layout is a shape with one stride per dimension, in elements; several layouts that share a
// shape describe the operands of an elementwise kernel (broadcast operands have stride 0).
// `coalesce_layouts` merges adjacent dimensions that are contiguous in every operand, so a
// contiguous tensor of any rank becomes one dimension and kernels take their fast path.
#pragma once

#include <cstdint>

namespace tessera::kernels {

constexpr int kMaxDims = 8;

struct Layout {
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};

  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= sizes[i];
    return n;
  }
  bool is_contiguous() const {
    int64_t expected = 1;
    for (int i = ndim - 1; i >= 0; --i) {
      if (sizes[i] != 1 && strides[i] != expected) return false;
      expected *= sizes[i];
    }
    return true;
  }
  // Offset of the element with row-major linear index `i` (sizes of this layout).
#if defined(__CUDACC__)
  __host__ __device__
#endif
  inline int64_t offset_of(int64_t i) const {
    int64_t off = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t q = i / sizes[d];
      off += (i - q * sizes[d]) * strides[d];
      i = q;
    }
    return off;
  }
};

// Merges dimensions of `count` layouts (same sizes) where possible; in place.
inline void coalesce_layouts(Layout* layouts, int count) {
  if (count > 0 && layouts[0].ndim == 0) {  // a scalar: one element
    for (int k = 0; k < count; ++k) {
      layouts[k].ndim = 1;
      layouts[k].sizes[0] = 1;
      layouts[k].strides[0] = 0;
    }
    return;
  }
  if (count == 0 || layouts[0].ndim <= 1) return;
  const int ndim = layouts[0].ndim;
  int out = 0;
  for (int d = 1; d < ndim; ++d) {
    const int64_t size = layouts[0].sizes[d];
    if (size == 1) continue;  // contributes nothing
    bool replace = layouts[0].sizes[out] == 1;
    bool merge = !replace;
    for (int k = 0; k < count && merge; ++k)
      merge = layouts[k].strides[out] == layouts[k].strides[d] * size;
    if (!replace && !merge) ++out;
    for (int k = 0; k < count; ++k) {
      Layout& l = layouts[k];
      if (merge) {
        l.sizes[out] *= size;
      } else {
        l.sizes[out] = size;
      }
      l.strides[out] = l.strides[d];
    }
  }
  for (int k = 0; k < count; ++k) layouts[k].ndim = out + 1;
}

}  // namespace tessera::kernels
