// Index formulas of the convolution and pooling kernels (kernels/conv.h), compiled for host
// and device so the CPU reference and the CUDA kernels share them.
//
// defines: tessera::kernels::im2col_source, col2im_gather, pool_window_sum, pool_adjoint_gather
//
// The gathers take a `load(index) -> A` callable so each side reads its own element type.
// Index arithmetic runs in the integer type I: int64_t on the CPU; the CUDA kernels use
// 32-bit indices when every index of the problem fits, since 64-bit division is slow there.
// Their loops run over the kernel offsets in a fixed order: results are bitwise the same on
// every run.
#pragma once

#include <cstdint>

#include "kernels/conv.h"
#include "kernels/philox.h"  // TESSERA_HOST_DEVICE

namespace tessera::kernels {

// Image index (NCHW) that column element (n, r, l) copies, or -1 when it falls in the padding.
template <typename I>
TESSERA_HOST_DEVICE I im2col_source(const ConvGeometry& g, I n, I r, I l) {
  const I kernel_w = static_cast<I>(g.kernel_w), kernel_h = static_cast<I>(g.kernel_h), out_w = static_cast<I>(g.out_w);
  const I height = static_cast<I>(g.height), width = static_cast<I>(g.width);
  const I j = r % kernel_w;
  const I t = r / kernel_w;
  const I i = t % kernel_h;
  const I c = t / kernel_h;
  const I oh = l / out_w, ow = l % out_w;
  const I h = oh * static_cast<I>(g.stride_h) - static_cast<I>(g.pad_h) + i * static_cast<I>(g.dilation_h);
  const I w = ow * static_cast<I>(g.stride_w) - static_cast<I>(g.pad_w) + j * static_cast<I>(g.dilation_w);
  if (h < 0 || h >= height || w < 0 || w >= width) return -1;
  return ((n * static_cast<I>(g.channels) + c) * height + h) * width + w;
}

// Sum of the column elements copied from image pixel (n, c, h, w).
template <typename A, typename I, typename Load>
TESSERA_HOST_DEVICE A col2im_gather(const ConvGeometry& g, I n, I c, I h, I w, I col_stride_n, I col_stride_r,
                                    const Load& load) {
  const I kernel_h = static_cast<I>(g.kernel_h), kernel_w = static_cast<I>(g.kernel_w);
  const I stride_h = static_cast<I>(g.stride_h), stride_w = static_cast<I>(g.stride_w);
  const I out_h = static_cast<I>(g.out_h), out_w = static_cast<I>(g.out_w);
  A sum = A(0);
  for (I i = 0; i < kernel_h; ++i) {
    const I hs = h + static_cast<I>(g.pad_h) - i * static_cast<I>(g.dilation_h);
    if (hs < 0 || hs % stride_h != 0) continue;
    const I oh = hs / stride_h;
    if (oh >= out_h) continue;
    for (I j = 0; j < kernel_w; ++j) {
      const I ws = w + static_cast<I>(g.pad_w) - j * static_cast<I>(g.dilation_w);
      if (ws < 0 || ws % stride_w != 0) continue;
      const I ow = ws / stride_w;
      if (ow >= out_w) continue;
      const I r = (c * kernel_h + i) * kernel_w + j;
      sum += load(n * col_stride_n + r * col_stride_r + oh * out_w + ow);
    }
  }
  return sum;
}

// Sum of x over the window of output (plane, oh, ow); padding contributes nothing.
template <typename A, typename I, typename Load>
TESSERA_HOST_DEVICE A pool_window_sum(const PoolGeometry& g, I plane, I oh, I ow, const Load& load) {
  const I height = static_cast<I>(g.height), width = static_cast<I>(g.width);
  A sum = A(0);
  const I h0 = oh * static_cast<I>(g.stride_h) - static_cast<I>(g.pad_h);
  const I w0 = ow * static_cast<I>(g.stride_w) - static_cast<I>(g.pad_w);
  for (I i = 0; i < static_cast<I>(g.kernel_h); ++i) {
    const I h = h0 + i;
    if (h < 0 || h >= height) continue;
    for (I j = 0; j < static_cast<I>(g.kernel_w); ++j) {
      const I w = w0 + j;
      if (w < 0 || w >= width) continue;
      sum += load((plane * height + h) * width + w);
    }
  }
  return sum;
}

// Sum of y over the windows that contain input pixel (plane, h, w).
template <typename A, typename I, typename Load>
TESSERA_HOST_DEVICE A pool_adjoint_gather(const PoolGeometry& g, I plane, I h, I w, const Load& load) {
  const I stride_h = static_cast<I>(g.stride_h), stride_w = static_cast<I>(g.stride_w);
  const I out_h = static_cast<I>(g.out_h), out_w = static_cast<I>(g.out_w);
  A sum = A(0);
  for (I i = 0; i < static_cast<I>(g.kernel_h); ++i) {
    const I hs = h + static_cast<I>(g.pad_h) - i;
    if (hs < 0 || hs % stride_h != 0) continue;
    const I oh = hs / stride_h;
    if (oh >= out_h) continue;
    for (I j = 0; j < static_cast<I>(g.kernel_w); ++j) {
      const I ws = w + static_cast<I>(g.pad_w) - j;
      if (ws < 0 || ws % stride_w != 0) continue;
      const I ow = ws / stride_w;
      if (ow >= out_w) continue;
      sum += load((plane * out_h + oh) * out_w + ow);
    }
  }
  return sum;
}

}  // namespace tessera::kernels
