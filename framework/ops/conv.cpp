// conv2d, conv_transpose2d and conv2d_weight_grad (framework/ops/conv.h) on im2col + GEMM.
//
// Three raw products do the work, each on contiguous operands with no autograd:
//   forward_product:   y = conv2d(x, w)              (im2col, then W_g @ cols per group)
//   transpose_product: x = conv_transpose2d(y, w)    (W_g^T @ y per group, then col2im)
//   weight_product:    dw = conv2d_weight_grad(x, g) (im2col as [R, N*L], then g' @ cols^T)
// and three nodes wire them into each other's backward: every derivative of a convolution
// is again one of the three, so create_graph works to any order.
#include "framework/ops/conv.h"

#include "framework/ops/common.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/shape.h"
#include "kernels/conv.h"
#include "kernels/matmul.h"

namespace tessera {
namespace {

struct ConvParams {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
};

ConvParams params_of(const Size2& stride, const Size2& padding, const Size2& dilation, int64_t groups) {
  return {stride.h, stride.w, padding.h, padding.w, dilation.h, dilation.w, groups};
}

// Window positions of a convolution over `size` pixels (torch's formula, floor division).
int64_t positions(int64_t size, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  const int64_t span = size + 2 * pad - dilation * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

// The convolution over image [N, C, H, W] with a kh x kw kernel at out_h x out_w positions.
kernels::ConvGeometry geometry(const Shape& image, int64_t kh, int64_t kw, int64_t out_h, int64_t out_w,
                               const ConvParams& p) {
  kernels::ConvGeometry g;
  g.batch = image[0];
  g.channels = image[1];
  g.height = image[2];
  g.width = image[3];
  g.kernel_h = kh;
  g.kernel_w = kw;
  g.out_h = out_h;
  g.out_w = out_w;
  g.stride_h = p.stride_h;
  g.stride_w = p.stride_w;
  g.pad_h = p.pad_h;
  g.pad_w = p.pad_w;
  g.dilation_h = p.dil_h;
  g.dilation_w = p.dil_w;
  return g;
}

// Columns are the image itself: a 1x1 kernel at stride 1 without padding.
bool pointwise(const kernels::ConvGeometry& g) {
  return g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0;
}

const void* element(const Tensor& t, int64_t index) {
  return static_cast<const char*>(t.data_ptr()) + index * static_cast<int64_t>(dtype_size(t.dtype()));
}
void* element_mut(const Tensor& t, int64_t index) {
  return static_cast<char*>(t.data_ptr()) + index * static_cast<int64_t>(dtype_size(t.dtype()));
}

void run_gemm(const Tensor& like, const kernels::GemmArgs& g) {
  TESSERA_DEVICE_DISPATCH(like, kernels::gemm_cpu(g), kernels::gemm_cuda(g, stream_for(like)));
}

void run_im2col(const Tensor& image, const kernels::ConvGeometry& g, const Tensor& col, int64_t sn, int64_t sr) {
  TESSERA_DEVICE_DISPATCH(image, kernels::im2col_cpu(image.dtype(), image.data_ptr(), g, col.data_ptr(), sn, sr),
                          kernels::im2col_cuda(image.dtype(), image.data_ptr(), g, col.data_ptr(), sn, sr,
                                               stream_for(image)));
}

void run_col2im(const Tensor& col, const kernels::ConvGeometry& g, int64_t sn, int64_t sr, const Tensor& image) {
  TESSERA_DEVICE_DISPATCH(col, kernels::col2im_cpu(col.dtype(), col.data_ptr(), g, sn, sr, image.data_ptr()),
                          kernels::col2im_cuda(col.dtype(), col.data_ptr(), g, sn, sr, image.data_ptr(),
                                               stream_for(col)));
}

kernels::GemmArgs gemm_args(DType dtype, int64_t m, int64_t n, int64_t k) {
  kernels::GemmArgs a;
  a.dtype = dtype;
  a.m = m;
  a.n = n;
  a.k = k;
  return a;
}

// y [N, O, OH, OW] = conv2d(x [N, C, H, W], w [O, C/groups, kh, kw]); contiguous operands.
Tensor forward_product(const Tensor& x, const Tensor& w, const ConvParams& p) {
  const int64_t n_images = x.shape()[0], out_channels = w.shape()[0], kh = w.shape()[2], kw = w.shape()[3];
  const int64_t out_h = positions(x.shape()[2], kh, p.stride_h, p.pad_h, p.dil_h);
  const int64_t out_w = positions(x.shape()[3], kw, p.stride_w, p.pad_w, p.dil_w);
  Tensor y = Tensor::empty({n_images, out_channels, out_h, out_w}, x.dtype(), x.device());
  if (y.numel() == 0) return y;
  const kernels::ConvGeometry g = geometry(x.shape(), kh, kw, out_h, out_w, p);
  const int64_t rows = g.rows(), cols = g.positions();
  const int64_t group_rows = rows / p.groups, group_out = out_channels / p.groups;
  Tensor col = x;
  if (!pointwise(g)) {
    col = Tensor::empty({n_images, rows, cols}, x.dtype(), x.device());
    run_im2col(x, g, col, rows * cols, cols);
  }
  for (int64_t group = 0; group < p.groups; ++group) {
    kernels::GemmArgs a = gemm_args(x.dtype(), group_out, cols, group_rows);
    a.a = element(w, group * group_out * group_rows);
    a.lda = group_rows;
    a.stride_a = 0;  // one weight for every image
    a.b = element(col, group * group_rows * cols);
    a.ldb = cols;
    a.stride_b = rows * cols;
    a.c = element_mut(y, group * group_out * cols);
    a.ldc = cols;
    a.stride_c = out_channels * cols;
    a.batch = n_images;
    run_gemm(y, a);
  }
  return y;
}

// x [N, C, out_h, out_w] = conv_transpose2d(y [N, Cin, H, W], w [Cin, C/groups, kh, kw]), where
// (H, W) are the window positions of a convolution over an out_h x out_w image.
Tensor transpose_product(const Tensor& y, const Tensor& w, const ConvParams& p, int64_t out_h, int64_t out_w) {
  const int64_t n_images = y.shape()[0], in_channels = y.shape()[1];
  const int64_t channels = w.shape()[1] * p.groups, kh = w.shape()[2], kw = w.shape()[3];
  Tensor x = Tensor::empty({n_images, channels, out_h, out_w}, y.dtype(), y.device());
  if (x.numel() == 0) return x;
  const kernels::ConvGeometry g = geometry(x.shape(), kh, kw, y.shape()[2], y.shape()[3], p);
  const int64_t rows = g.rows(), cols = g.positions();
  const int64_t group_rows = rows / p.groups, group_in = in_channels / p.groups;
  if (cols == 1 && p.groups == 1 && p.pad_h == 0 && p.pad_w == 0 && (kh == 1 || p.dil_h == 1) &&
      (kw == 1 || p.dil_w == 1) && out_h == kh && out_w == kw) {
    // A 1x1 input: column row r is output pixel r, so x [N, C*kh*kw] = y [N, Cin] @ w [Cin, C*kh*kw].
    kernels::GemmArgs a = gemm_args(y.dtype(), n_images, rows, in_channels);
    a.a = y.data_ptr();
    a.lda = in_channels;
    a.b = w.data_ptr();
    a.ldb = rows;
    a.c = x.data_ptr();
    a.ldc = rows;
    run_gemm(x, a);
    return x;
  }
  const bool direct = pointwise(g);  // the columns are the result
  Tensor col = direct ? x : Tensor::empty({n_images, rows, cols}, y.dtype(), y.device());
  for (int64_t group = 0; group < p.groups; ++group) {
    kernels::GemmArgs a = gemm_args(y.dtype(), group_rows, cols, group_in);
    a.a = element(w, group * group_in * group_rows);
    a.trans_a = true;  // stored [group_in, group_rows]
    a.lda = group_rows;
    a.stride_a = 0;
    a.b = element(y, group * group_in * cols);
    a.ldb = cols;
    a.stride_b = in_channels * cols;
    a.c = element_mut(col, group * group_rows * cols);
    a.ldc = cols;
    a.stride_c = rows * cols;
    a.batch = n_images;
    run_gemm(x, a);
  }
  if (!direct) run_col2im(col, g, rows * cols, cols, x);
  return x;
}

// dw [O, C/groups, kh, kw] of conv2d(x [N, C, H, W], w) for output gradient g [N, O, OH, OW].
Tensor weight_product(const Tensor& x, const Tensor& grad, const Shape& weight_shape, const ConvParams& p) {
  const int64_t n_images = x.shape()[0], out_channels = weight_shape[0];
  const int64_t kh = weight_shape[2], kw = weight_shape[3];
  const kernels::ConvGeometry g = geometry(x.shape(), kh, kw, grad.shape()[2], grad.shape()[3], p);
  const int64_t rows = g.rows(), cols = g.positions();
  const int64_t group_rows = rows / p.groups, group_out = out_channels / p.groups;
  const int64_t k = n_images * cols;
  if (k == 0) return Tensor::zeros(weight_shape, x.dtype(), x.device());
  Tensor dw = Tensor::empty(weight_shape, x.dtype(), x.device());
  // Columns of all images side by side: [R, N*L]; the gradient as [O, N*L] to match.
  Tensor col = Tensor::empty({rows, n_images, cols}, x.dtype(), x.device());
  run_im2col(x, g, col, cols, n_images * cols);
  const Tensor g_rows =
      n_images == 1 ? grad : grad.as_strided({out_channels, n_images, cols}, {cols, out_channels * cols, 1},
                                             grad.storage_offset()).clone_data();
  kernels::GemmArgs a = gemm_args(x.dtype(), group_out, group_rows, k);
  a.a = g_rows.data_ptr();
  a.lda = k;
  a.stride_a = group_out * k;
  a.b = col.data_ptr();
  a.trans_b = true;  // stored [group_rows, k]
  a.ldb = k;
  a.stride_b = group_rows * k;
  a.c = dw.data_ptr();
  a.ldc = group_rows;
  a.stride_c = group_out * group_rows;
  a.batch = p.groups;
  run_gemm(dw, a);
  return dw;
}

Tensor conv2d_core(const Tensor& x, const Tensor& w, const ConvParams& p);
Tensor transpose_core(const Tensor& y, const Tensor& w, const ConvParams& p, int64_t out_h, int64_t out_w);
Tensor weight_core(const Tensor& x, const Tensor& grad, const Shape& weight_shape, const ConvParams& p);

struct Conv2dBackward : autograd::Node {
  autograd::SavedTensor x, w;
  ConvParams p;
  std::string name() const override { return "Conv2dBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor xv = x.unpack(), wv = w.unpack();
    Tensor dx, dw;
    if (needs_input_grad(0)) dx = transpose_core(grads[0], wv, p, xv.shape()[2], xv.shape()[3]);
    if (needs_input_grad(1)) dw = weight_core(xv, grads[0], wv.shape(), p);
    return {dx, dw};
  }
  void release_saved() override {
    x.reset();
    w.reset();
  }
};

// y = conv_transpose2d(x, w) is conv2d's input gradient, so dx = conv2d(g, w) and
// dw = conv2d_weight_grad(g, x).
struct ConvTranspose2dBackward : autograd::Node {
  autograd::SavedTensor x, w;
  ConvParams p;
  std::string name() const override { return "ConvTranspose2dBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor xv = x.unpack(), wv = w.unpack();
    Tensor dx, dw;
    if (needs_input_grad(0)) dx = conv2d_core(grads[0], wv, p);
    if (needs_input_grad(1)) dw = weight_core(grads[0], xv, wv.shape(), p);
    return {dx, dw};
  }
  void release_saved() override {
    x.reset();
    w.reset();
  }
};

// dw = conv2d_weight_grad(x, g) is bilinear: d/dx = conv_transpose2d(g, gdw), d/dg = conv2d(x, gdw).
struct Conv2dWeightGradBackward : autograd::Node {
  autograd::SavedTensor x, grad;
  ConvParams p;
  std::string name() const override { return "Conv2dWeightGradBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor xv = x.unpack(), gv = grad.unpack();
    Tensor dx, dg;
    if (needs_input_grad(0)) dx = transpose_core(gv, grads[0], p, xv.shape()[2], xv.shape()[3]);
    if (needs_input_grad(1)) dg = conv2d_core(xv, grads[0], p);
    return {dx, dg};
  }
  void release_saved() override {
    x.reset();
    grad.reset();
  }
};

Tensor conv2d_core(const Tensor& x, const Tensor& w, const ConvParams& p) {
  Tensor out = forward_product(ops::contiguous_data(x), ops::contiguous_data(w), p);
  if (autograd::needs_grad({x, w})) {
    auto node = autograd::make_node<Conv2dBackward>({x, w});
    node->x = autograd::SavedTensor(x, false);
    node->w = autograd::SavedTensor(w, false);
    node->p = p;
    autograd::record(out, node);
  }
  return out;
}

Tensor transpose_core(const Tensor& y, const Tensor& w, const ConvParams& p, int64_t out_h, int64_t out_w) {
  Tensor out = transpose_product(ops::contiguous_data(y), ops::contiguous_data(w), p, out_h, out_w);
  if (autograd::needs_grad({y, w})) {
    auto node = autograd::make_node<ConvTranspose2dBackward>({y, w});
    node->x = autograd::SavedTensor(y, false);
    node->w = autograd::SavedTensor(w, false);
    node->p = p;
    autograd::record(out, node);
  }
  return out;
}

Tensor weight_core(const Tensor& x, const Tensor& grad, const Shape& weight_shape, const ConvParams& p) {
  Tensor out = weight_product(ops::contiguous_data(x), ops::contiguous_data(grad), weight_shape, p);
  if (autograd::needs_grad({x, grad})) {
    auto node = autograd::make_node<Conv2dWeightGradBackward>({x, grad});
    node->x = autograd::SavedTensor(x, false);
    node->grad = autograd::SavedTensor(grad, false);
    node->p = p;
    autograd::record(out, node);
  }
  return out;
}

void check_operands(const char* op, const Tensor& x, const Tensor& w) {
  ops::check_defined(op, x, "input");
  ops::check_defined(op, w, "weight");
  ops::check_same_device(op, x, w);
  ops::check_same_dtype(op, x, w);
  ops::check_floating(op, x);
  TESSERA_CHECK(x.dim() == 4, op, ": input must be 4-D [N, C, H, W], got ", shape_str(x.shape()));
  TESSERA_CHECK(w.dim() == 4, op, ": weight must be 4-D, got ", shape_str(w.shape()));
}

void check_params(const char* op, const ConvParams& p) {
  TESSERA_CHECK(p.stride_h > 0 && p.stride_w > 0, op, ": stride must be positive, got (", p.stride_h, ", ",
                p.stride_w, ")");
  TESSERA_CHECK(p.dil_h > 0 && p.dil_w > 0, op, ": dilation must be positive, got (", p.dil_h, ", ", p.dil_w, ")");
  TESSERA_CHECK(p.pad_h >= 0 && p.pad_w >= 0, op, ": padding must be non-negative, got (", p.pad_h, ", ", p.pad_w,
                ")");
  TESSERA_CHECK(p.groups > 0, op, ": groups must be positive, got ", p.groups);
}

Tensor add_bias(const char* op, const Tensor& y, const Tensor& bias) {
  if (!bias.defined()) return y;
  const int64_t channels = y.shape()[1];
  TESSERA_CHECK(bias.dim() == 1 && bias.shape()[0] == channels, op, ": bias has shape ", shape_str(bias.shape()),
                " but the output has ", channels, " channels");
  ops::check_same_device(op, y, bias);
  ops::check_same_dtype(op, y, bias);
  return add(y, reshape(bias, {1, channels, 1, 1}));
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options) {
  const char* op = "conv2d";
  check_operands(op, x, weight);
  const ConvParams p = params_of(options.stride, options.padding, options.dilation, options.groups);
  check_params(op, p);
  const int64_t channels = x.shape()[1], out_channels = weight.shape()[0];
  TESSERA_CHECK(channels % p.groups == 0 && out_channels % p.groups == 0, op, ": groups=", p.groups,
                " must divide the input channels (", channels, ") and the output channels (", out_channels, ")");
  TESSERA_CHECK(weight.shape()[1] * p.groups == channels, op, ": weight ", shape_str(weight.shape()),
                " expects ", weight.shape()[1] * p.groups, " input channels (groups=", p.groups, ") but the input ",
                shape_str(x.shape()), " has ", channels);
  const int64_t out_h = positions(x.shape()[2], weight.shape()[2], p.stride_h, p.pad_h, p.dil_h);
  const int64_t out_w = positions(x.shape()[3], weight.shape()[3], p.stride_w, p.pad_w, p.dil_w);
  TESSERA_CHECK(out_h > 0 && out_w > 0, op, ": input ", shape_str(x.shape()), " (padded by (", p.pad_h, ", ", p.pad_w,
                ")) is smaller than the dilated kernel ", shape_str(weight.shape()));
  return add_bias(op, conv2d_core(x, weight, p), bias);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const ConvTranspose2dOptions& options) {
  const char* op = "conv_transpose2d";
  check_operands(op, x, weight);
  const ConvParams p = params_of(options.stride, options.padding, options.dilation, options.groups);
  check_params(op, p);
  const Size2 extra = options.output_padding;
  TESSERA_CHECK(extra.h >= 0 && extra.w >= 0 && (extra.h < p.stride_h || extra.h < p.dil_h) &&
                    (extra.w < p.stride_w || extra.w < p.dil_w),
                op, ": output_padding (", extra.h, ", ", extra.w,
                ") must be non-negative and smaller than either stride or dilation");
  const int64_t channels = x.shape()[1];
  TESSERA_CHECK(channels % p.groups == 0, op, ": groups=", p.groups, " must divide the input channels (", channels,
                ")");
  TESSERA_CHECK(weight.shape()[0] == channels, op, ": weight ", shape_str(weight.shape()),
                " must be [in_channels, out_channels/groups, kh, kw] with in_channels = ", channels,
                " (the input's channels)");
  const int64_t kh = weight.shape()[2], kw = weight.shape()[3];
  const int64_t out_h = (x.shape()[2] - 1) * p.stride_h - 2 * p.pad_h + p.dil_h * (kh - 1) + extra.h + 1;
  const int64_t out_w = (x.shape()[3] - 1) * p.stride_w - 2 * p.pad_w + p.dil_w * (kw - 1) + extra.w + 1;
  TESSERA_CHECK(out_h > 0 && out_w > 0, op, ": input ", shape_str(x.shape()), " with padding (", p.pad_h, ", ",
                p.pad_w, ") gives an empty output (", out_h, " x ", out_w, ")");
  return add_bias(op, transpose_core(x, weight, p, out_h, out_w), bias);
}

Tensor conv2d_weight_grad(const Tensor& x, const Tensor& grad_out, const Shape& weight_shape,
                          const Conv2dOptions& options) {
  const char* op = "conv2d_weight_grad";
  ops::check_defined(op, x, "input");
  ops::check_defined(op, grad_out, "output gradient");
  ops::check_same_device(op, x, grad_out);
  ops::check_same_dtype(op, x, grad_out);
  ops::check_floating(op, x);
  const ConvParams p = params_of(options.stride, options.padding, options.dilation, options.groups);
  check_params(op, p);
  TESSERA_CHECK(x.dim() == 4 && grad_out.dim() == 4 && weight_shape.size() == 4, op,
                ": input, output gradient and weight must be 4-D, got ", shape_str(x.shape()), ", ",
                shape_str(grad_out.shape()), ", ", shape_str(weight_shape));
  const int64_t out_h = positions(x.shape()[2], weight_shape[2], p.stride_h, p.pad_h, p.dil_h);
  const int64_t out_w = positions(x.shape()[3], weight_shape[3], p.stride_w, p.pad_w, p.dil_w);
  TESSERA_CHECK(weight_shape[0] % p.groups == 0 && weight_shape[1] * p.groups == x.shape()[1] &&
                    grad_out.shape()[0] == x.shape()[0] && grad_out.shape()[1] == weight_shape[0] &&
                    grad_out.shape()[2] == out_h && grad_out.shape()[3] == out_w,
                op, ": output gradient ", shape_str(grad_out.shape()), " does not match conv2d of input ",
                shape_str(x.shape()), " with weight ", shape_str(weight_shape), " (groups=", p.groups, ")");
  return weight_core(x, grad_out, weight_shape, p);
}

}  // namespace tessera
