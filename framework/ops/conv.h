// Differentiable 2-D convolutions on NCHW images.
//
// defines: Size2, Conv2dOptions, ConvTranspose2dOptions, conv2d, conv_transpose2d,
//          conv2d_weight_grad
//
// Semantics follow torch.nn.functional of the same names:
//  * conv2d(x [N, C, H, W], weight [O, C/groups, kh, kw], bias [O] or undefined) ->
//    [N, O, OH, OW], OH = (H + 2*pad - dilation*(kh-1) - 1) / stride + 1 (same for W).
//  * conv_transpose2d(x [N, C, H, W], weight [C, O/groups, kh, kw], bias [O]) -> [N, O, OH, OW],
//    OH = (H-1)*stride - 2*pad + dilation*(kh-1) + output_padding + 1: the adjoint of conv2d in
//    its input, i.e. conv2d's input gradient.
//  * conv2d_weight_grad(x, grad_out, weight_shape, options): conv2d's weight gradient, the
//    adjoint of conv2d in its weight.
// The three are each other's derivatives (conv2d's backward is conv_transpose2d and
// conv2d_weight_grad, and so on around), so derivatives of any order work: WGAN-GP's gradient
// penalty differentiates a convolutional critic twice.
//
// Implementation: im2col + GEMM (kernels/conv.h, kernels/matmul.h: OpenBLAS on the CPU,
// cuBLASLt on CUDA with f32 accumulation for bf16/f16). The forward multiplies each group's
// weight with the column matrices of all images in one strided-batched GEMM; the input
// gradient multiplies by the transposed weight and folds the columns back with a
// deterministic gather (col2im); the weight gradient is one GEMM per call over all images
// (columns laid out [C*kh*kw, N*OH*OW]). A 1x1 convolution with stride 1 and no padding skips
// im2col, and a transposed convolution of a 1x1 image is a single GEMM (DCGAN's first layer).
// Column buffers are temporaries of the caching allocator; nothing synchronises the host.
// Operands must share dtype (f64, f32, bf16, f16) and device; any strides are accepted
// (non-contiguous operands are copied).
#pragma once

#include <cstdint>

#include "framework/core/tensor.h"

namespace tessera {

// A (height, width) pair; one number means the same for both.
struct Size2 {
  int64_t h = 0, w = 0;
  Size2(int64_t both = 0) : h(both), w(both) {}  // NOLINT(google-explicit-constructor): `.stride = 2`
  Size2(int64_t height, int64_t width) : h(height), w(width) {}
  bool operator==(const Size2&) const = default;
};

struct Conv2dOptions {
  Size2 stride{1}, padding{0}, dilation{1};
  int64_t groups = 1;
};

struct ConvTranspose2dOptions {
  Size2 stride{1}, padding{0}, output_padding{0}, dilation{1};
  int64_t groups = 1;
};

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), const Conv2dOptions& options = {});
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                        const ConvTranspose2dOptions& options = {});
Tensor conv2d_weight_grad(const Tensor& x, const Tensor& grad_out, const Shape& weight_shape,
                          const Conv2dOptions& options = {});

}  // namespace tessera
