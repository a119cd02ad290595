// Convolution and pooling building blocks on NCHW images: im2col / col2im for the GEMM
// convolutions, and window sums for average pooling and nearest upsampling.
//
// defines: ConvGeometry, im2col_cpu/cuda, col2im_cpu/cuda, PoolGeometry, pool_sum_cpu/cuda,
//          pool_sum_adjoint_cpu/cuda
//
// A convolution slides a kernel_h x kernel_w window (dilated, strided, over a zero-padded
// image) to out_h x out_w positions. im2col writes, for image n, one column matrix whose row
// r = (c * kernel_h + i) * kernel_w + j holds, at position l = oh * out_w + ow, the pixel
// image[n, c, oh*stride_h - pad_h + i*dilation_h, ow*stride_w - pad_w + j*dilation_w] (0 in
// the padding). Element (n, r, l) lives at col[n * col_stride_n + r * col_stride_r + l], so the
// same kernel writes the batch-major layout [N, R, L] (col_stride_n = R*L, col_stride_r = L)
// used by the forward GEMMs and the row-major layout [R, N, L] (col_stride_n = L,
// col_stride_r = N*L) that the weight gradient multiplies as one GEMM over all images.
// col2im is its adjoint: every image pixel is the sum of the column elements that im2col
// copied from it. It is written as a gather (each pixel walks the kernel offsets that reach
// it, in a fixed order), so it is deterministic on both devices and needs no atomics; sums
// are in float (double for f64). Images and columns have one dtype (f64, f32, bf16, f16);
// images are contiguous NCHW.
//
// pool_sum: y[p, oh, ow] = scale * sum of x[p, h, w] over the window at (oh, ow) (zero
// padding counts as zeros), for p over batch*channels planes; pool_sum_adjoint is its
// adjoint, x[p, h, w] = scale * sum of y over the windows that contain (h, w). Average
// pooling is pool_sum with scale 1/(kernel_h*kernel_w) (PyTorch's count_include_pad=True);
// nearest upsampling by s is pool_sum_adjoint with a kernel and stride of s and scale 1.
#pragma once

#include <cstdint>

#include "framework/core/dtype.h"

namespace tessera::kernels {

struct ConvGeometry {
  int64_t batch = 0, channels = 0, height = 0, width = 0;  // the image
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t out_h = 0, out_w = 0;  // window positions
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  int64_t rows() const { return channels * kernel_h * kernel_w; }
  int64_t positions() const { return out_h * out_w; }
};

void im2col_cpu(DType dtype, const void* image, const ConvGeometry& g, void* col, int64_t col_stride_n,
                int64_t col_stride_r);
void col2im_cpu(DType dtype, const void* col, const ConvGeometry& g, int64_t col_stride_n, int64_t col_stride_r,
                void* image);

struct PoolGeometry {
  int64_t planes = 0, height = 0, width = 0;  // x: [planes, height, width]
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t out_h = 0, out_w = 0;  // y: [planes, out_h, out_w]
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

void pool_sum_cpu(DType dtype, const void* x, const PoolGeometry& g, double scale, void* y);
void pool_sum_adjoint_cpu(DType dtype, const void* y, const PoolGeometry& g, double scale, void* x);

#ifdef TESSERA_WITH_CUDA
void im2col_cuda(DType dtype, const void* image, const ConvGeometry& g, void* col, int64_t col_stride_n,
                 int64_t col_stride_r, void* stream);
void col2im_cuda(DType dtype, const void* col, const ConvGeometry& g, int64_t col_stride_n, int64_t col_stride_r,
                 void* image, void* stream);
void pool_sum_cuda(DType dtype, const void* x, const PoolGeometry& g, double scale, void* y, void* stream);
void pool_sum_adjoint_cuda(DType dtype, const void* y, const PoolGeometry& g, double scale, void* x, void* stream);
#endif

}  // namespace tessera::kernels
