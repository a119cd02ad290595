// AvgPool2d, Upsample and Flatten layers (pool.h).
#include "framework/nn/pool.h"

#include "framework/ops/pool.h"
#include "framework/ops/shape.h"

namespace tessera::nn {

AvgPool2d::AvgPool2d(Size2 kernel, Size2 stride, Size2 padding)
    : kernel_(kernel), stride_(stride.h == 0 && stride.w == 0 ? kernel : stride), padding_(padding) {
  TESSERA_CHECK(kernel_.h > 0 && kernel_.w > 0 && stride_.h > 0 && stride_.w > 0, "AvgPool2d: kernel (", kernel_.h,
                ", ", kernel_.w, ") and stride (", stride_.h, ", ", stride_.w, ") must be positive");
  TESSERA_CHECK(padding_.h >= 0 && padding_.w >= 0 && 2 * padding_.h <= kernel_.h && 2 * padding_.w <= kernel_.w,
                "AvgPool2d: padding (", padding_.h, ", ", padding_.w, ") must be at most half the kernel");
}

Tensor AvgPool2d::forward(const Tensor& x) { return avg_pool2d(x, kernel_, stride_, padding_); }

Upsample::Upsample(int64_t scale) : scale_(scale) {
  TESSERA_CHECK(scale >= 1, "Upsample: scale must be a positive integer, got ", scale);
}

Tensor Upsample::forward(const Tensor& x) { return upsample_nearest2d(x, scale_); }

Flatten::Flatten(int64_t start_dim, int64_t end_dim) : start_dim_(start_dim), end_dim_(end_dim) {}

Tensor Flatten::forward(const Tensor& x) { return flatten(x, start_dim_, end_dim_); }

}  // namespace tessera::nn
