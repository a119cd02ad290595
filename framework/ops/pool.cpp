// avg_pool2d and upsample_nearest2d (framework/ops/pool.h) on the window-sum kernels.
//
// window_sum(x) sums every pooling window and scales it; window_spread(y) is its adjoint (each
// pixel gathers the windows that contain it). The node of each applies the other one.
#include "framework/ops/pool.h"

#include "framework/ops/common.h"
#include "kernels/conv.h"

namespace tessera {
namespace {

Tensor window_sum(const Tensor& x, const kernels::PoolGeometry& g, double scale);
Tensor window_spread(const Tensor& y, const kernels::PoolGeometry& g, double scale);

Shape image_shape(const Tensor& like, int64_t height, int64_t width) {
  return {like.shape()[0], like.shape()[1], height, width};
}

struct WindowSumBackward : autograd::Node {
  kernels::PoolGeometry g;
  double scale = 1.0;
  std::string name() const override { return "WindowSumBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override { return {window_spread(grads[0], g, scale)}; }
};

struct WindowSpreadBackward : autograd::Node {
  kernels::PoolGeometry g;
  double scale = 1.0;
  std::string name() const override { return "WindowSpreadBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override { return {window_sum(grads[0], g, scale)}; }
};

Tensor window_sum(const Tensor& x, const kernels::PoolGeometry& g, double scale) {
  const Tensor xc = ops::contiguous_data(x);
  Tensor y = Tensor::empty(image_shape(x, g.out_h, g.out_w), x.dtype(), x.device());
  if (y.numel() > 0)
    TESSERA_DEVICE_DISPATCH(y, kernels::pool_sum_cpu(x.dtype(), xc.data_ptr(), g, scale, y.data_ptr()),
                            kernels::pool_sum_cuda(x.dtype(), xc.data_ptr(), g, scale, y.data_ptr(), stream_for(y)));
  if (autograd::needs_grad({x})) {
    auto node = autograd::make_node<WindowSumBackward>({x});
    node->g = g;
    node->scale = scale;
    autograd::record(y, node);
  }
  return y;
}

Tensor window_spread(const Tensor& y, const kernels::PoolGeometry& g, double scale) {
  const Tensor yc = ops::contiguous_data(y);
  Tensor x = Tensor::empty(image_shape(y, g.height, g.width), y.dtype(), y.device());
  if (x.numel() > 0)
    TESSERA_DEVICE_DISPATCH(x, kernels::pool_sum_adjoint_cpu(y.dtype(), yc.data_ptr(), g, scale, x.data_ptr()),
                            kernels::pool_sum_adjoint_cuda(y.dtype(), yc.data_ptr(), g, scale, x.data_ptr(),
                                                           stream_for(x)));
  if (autograd::needs_grad({y})) {
    auto node = autograd::make_node<WindowSpreadBackward>({y});
    node->g = g;
    node->scale = scale;
    autograd::record(x, node);
  }
  return x;
}

void check_image(const char* op, const Tensor& x) {
  ops::check_defined(op, x);
  ops::check_floating(op, x);
  TESSERA_CHECK(x.dim() == 4, op, ": input must be 4-D [N, C, H, W], got ", shape_str(x.shape()));
}

}  // namespace

Tensor avg_pool2d(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding) {
  const char* op = "avg_pool2d";
  check_image(op, x);
  if (stride.h == 0 && stride.w == 0) stride = kernel;
  TESSERA_CHECK(kernel.h > 0 && kernel.w > 0, op, ": kernel must be positive, got (", kernel.h, ", ", kernel.w, ")");
  TESSERA_CHECK(stride.h > 0 && stride.w > 0, op, ": stride must be positive, got (", stride.h, ", ", stride.w, ")");
  TESSERA_CHECK(padding.h >= 0 && padding.w >= 0 && 2 * padding.h <= kernel.h && 2 * padding.w <= kernel.w, op,
                ": padding (", padding.h, ", ", padding.w, ") must be non-negative and at most half the kernel (",
                kernel.h, ", ", kernel.w, ")");
  kernels::PoolGeometry g;
  g.planes = x.shape()[0] * x.shape()[1];
  g.height = x.shape()[2];
  g.width = x.shape()[3];
  g.kernel_h = kernel.h;
  g.kernel_w = kernel.w;
  g.stride_h = stride.h;
  g.stride_w = stride.w;
  g.pad_h = padding.h;
  g.pad_w = padding.w;
  const int64_t span_h = g.height + 2 * g.pad_h - g.kernel_h, span_w = g.width + 2 * g.pad_w - g.kernel_w;
  TESSERA_CHECK(span_h >= 0 && span_w >= 0, op, ": input ", shape_str(x.shape()), " is smaller than the kernel (",
                kernel.h, ", ", kernel.w, ")");
  g.out_h = span_h / g.stride_h + 1;
  g.out_w = span_w / g.stride_w + 1;
  return window_sum(x, g, 1.0 / static_cast<double>(kernel.h * kernel.w));
}

Tensor upsample_nearest2d(const Tensor& x, int64_t scale) {
  const char* op = "upsample_nearest2d";
  check_image(op, x);
  TESSERA_CHECK(scale >= 1, op, ": scale must be a positive integer, got ", scale);
  kernels::PoolGeometry g;
  g.planes = x.shape()[0] * x.shape()[1];
  g.out_h = x.shape()[2];
  g.out_w = x.shape()[3];
  g.height = g.out_h * scale;
  g.width = g.out_w * scale;
  g.kernel_h = g.kernel_w = g.stride_h = g.stride_w = scale;
  return window_spread(x, g, 1.0);
}

}  // namespace tessera
