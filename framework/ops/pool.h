// Differentiable average pooling and nearest-neighbour upsampling on NCHW images.
//
// defines: avg_pool2d, upsample_nearest2d
//
// avg_pool2d(x [N, C, H, W], kernel, stride, padding) -> [N, C, OH, OW] with
// OH = (H + 2*padding - kernel) / stride + 1, as torch.nn.functional.avg_pool2d with its
// defaults (count_include_pad=True: padded zeros count in the average, ceil_mode=False).
// A stride of 0 (the default) means the kernel size; padding is at most half the kernel.
// upsample_nearest2d(x [N, C, H, W], scale) -> [N, C, scale*H, scale*W] repeats each pixel
// in a scale x scale block (torch's interpolate(mode="nearest") with an integer factor).
//
// Both are window sums (kernels/conv.h): average pooling sums each window and scales, and
// upsampling is the adjoint of summing scale x scale blocks. Each one's backward is the
// other kind of window sum, so derivatives of any order work. Any float dtype; inputs with
// any strides (copied when not contiguous).
#pragma once

#include "framework/core/tensor.h"
#include "framework/ops/conv.h"  // Size2

namespace tessera {

Tensor avg_pool2d(const Tensor& x, Size2 kernel, Size2 stride = Size2(0), Size2 padding = Size2(0));
Tensor upsample_nearest2d(const Tensor& x, int64_t scale);

}  // namespace tessera
