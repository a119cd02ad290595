// Unary math functions and activations (declared in elementwise.h).
#include "framework/ops/common.h"
#include "framework/ops/elementwise.h"

namespace tessera {

using kernels::UnaryOp;
using kernels::UnaryParams;

namespace ops {

Tensor unary_raw(UnaryOp op, const Tensor& x, UnaryParams params) {
  check_defined("unary op", x);
  check_floating("unary op", x);
  const Tensor in = contiguous_data(x);
  Tensor out = empty_like(in);
  TESSERA_DEVICE_DISPATCH(out, kernels::unary_cpu(op, in.dtype(), in.data_ptr(), out.data_ptr(), in.numel(), params),
                          kernels::unary_cuda(op, in.dtype(), in.data_ptr(), out.data_ptr(), in.numel(), params,
                                              stream_for(out)));
  return out;
}

}  // namespace ops

namespace {

// Backward of the non-activation unary ops, written with ops so it can be differentiated again.
struct UnaryBackward : autograd::Node {
  UnaryOp op;
  UnaryParams params;
  autograd::SavedTensor x, y;
  std::string name() const override { return "UnaryBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor& g = grads[0];
    const Tensor xv = x.unpack(), yv = y.unpack();
    switch (op) {
      case UnaryOp::neg: return {neg(g)};
      case UnaryOp::exp: return {mul(g, yv)};
      case UnaryOp::log: return {div(g, xv)};
      case UnaryOp::sqrt: return {div(g, affine(yv, 2.0, 0.0))};
      case UnaryOp::rsqrt: return {affine(mul(g, mul(yv, mul(yv, yv))), -0.5, 0.0)};
      case UnaryOp::abs: return {mul(g, sign(xv))};
      case UnaryOp::square: return {mul(g, affine(xv, 2.0, 0.0))};
      case UnaryOp::reciprocal: return {neg(mul(g, mul(yv, yv)))};
      case UnaryOp::pow_scalar: return {mul(g, affine(pow(xv, params.a - 1.0), params.a, 0.0))};
      case UnaryOp::affine: return {affine(g, params.a, 0.0)};
      case UnaryOp::clamp: {
        Tensor mask;
        {
          NoGradGuard no_grad;  // pass the gradient where low <= x <= high
          const Tensor below = ops::unary_raw(UnaryOp::step, affine(xv, -1.0, 0.0), {-params.a, 0.0});
          const Tensor above = ops::unary_raw(UnaryOp::step, xv, {params.b, 0.0});
          mask = mul(affine(below, -1.0, 1.0), affine(above, -1.0, 1.0));
        }
        return {mul(g, mask)};
      }
      default: return {Tensor()};  // sign, step: zero almost everywhere
    }
  }
  void release_saved() override {
    x.reset();
    y.reset();
  }
};

Tensor unary(UnaryOp op, const Tensor& x, UnaryParams params = {}, bool differentiable = true) {
  Tensor out = ops::unary_raw(op, x, params);
  if (differentiable && autograd::needs_grad({x})) {
    auto node = autograd::make_node<UnaryBackward>({x});
    node->op = op;
    node->params = params;
    const bool uses_x = op == UnaryOp::log || op == UnaryOp::abs || op == UnaryOp::square ||
                        op == UnaryOp::pow_scalar || op == UnaryOp::clamp;
    const bool uses_y = op == UnaryOp::exp || op == UnaryOp::sqrt || op == UnaryOp::rsqrt || op == UnaryOp::reciprocal;
    if (uses_x) node->x = autograd::SavedTensor(x, false);
    autograd::record(out, node);
    if (uses_y) node->y = autograd::SavedTensor(out, true);  // after record: out's grad_fn is node
  }
  return out;
}

// Backward of activation_grad(op, g, x) = g * f'(x):
//   d/dg = gg * f'(x)  (activation_grad again),  d/dx = gg * g * f''(x)  (order-2 kernel).
struct ActivationGradBackward : autograd::Node {
  UnaryOp op;
  double param = 0.0;
  autograd::SavedTensor g, x;
  std::string name() const override { return "ActivationGradBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override;
  void release_saved() override {
    g.reset();
    x.reset();
  }
};

struct ThirdDerivativeUnsupported : autograd::Node {
  std::string name() const override { return "ActivationSecondDerivativeBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&) override {
    detail::throw_error("third derivatives of activations are not supported");
  }
};

Tensor activation_second(UnaryOp op, const Tensor& h, const Tensor& x, double param) {
  ops::check_same_dtype("activation second derivative", h, x);
  const Tensor hc = ops::contiguous_data(h), xc = ops::contiguous_data(x);
  Tensor out = ops::empty_like(xc);
  TESSERA_DEVICE_DISPATCH(out, kernels::unary_grad_cpu(op, 2, xc.dtype(), hc.data_ptr(), xc.data_ptr(),
                                                       out.data_ptr(), xc.numel(), {param, 0.0}),
                          kernels::unary_grad_cuda(op, 2, xc.dtype(), hc.data_ptr(), xc.data_ptr(), out.data_ptr(),
                                                   xc.numel(), {param, 0.0}, stream_for(out)));
  if (autograd::needs_grad({h, x})) autograd::record(out, autograd::make_node<ThirdDerivativeUnsupported>({h, x}));
  return out;
}

std::vector<Tensor> ActivationGradBackward::apply(std::vector<Tensor>& grads) {
  const Tensor& gg = grads[0];
  const Tensor gv = g.unpack(), xv = x.unpack();
  Tensor dg, dx;
  if (needs_input_grad(0)) dg = activation_grad(op, gg, xv, param);
  if (needs_input_grad(1) && op != UnaryOp::relu && op != UnaryOp::leaky_relu)
    dx = activation_second(op, mul(gg, gv), xv, param);
  return {dg, dx};
}

struct ActivationBackward : autograd::Node {
  UnaryOp op;
  double param = 0.0;
  autograd::SavedTensor x;
  std::string name() const override { return "ActivationBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override { return {activation_grad(op, grads[0], x.unpack(), param)}; }
  void release_saved() override { x.reset(); }
};

Tensor activation(UnaryOp op, const Tensor& x, double param = 0.0) {
  Tensor out = ops::unary_raw(op, x, {param, 0.0});
  if (autograd::needs_grad({x})) {
    auto node = autograd::make_node<ActivationBackward>({x});
    node->op = op;
    node->param = param;
    node->x = autograd::SavedTensor(x, false);
    autograd::record(out, node);
  }
  return out;
}

}  // namespace

Tensor activation_grad(UnaryOp op, const Tensor& g, const Tensor& x, double param) {
  ops::check_same_dtype("activation backward", g, x);
  ops::check_same_device("activation backward", g, x);
  TESSERA_CHECK(g.shape() == x.shape(), "activation backward: gradient ", shape_str(g.shape()), " and input ",
                shape_str(x.shape()), " differ in shape");
  const Tensor gc = ops::contiguous_data(g), xc = ops::contiguous_data(x);
  Tensor out = ops::empty_like(xc);
  TESSERA_DEVICE_DISPATCH(out, kernels::unary_grad_cpu(op, 1, xc.dtype(), gc.data_ptr(), xc.data_ptr(),
                                                       out.data_ptr(), xc.numel(), {param, 0.0}),
                          kernels::unary_grad_cuda(op, 1, xc.dtype(), gc.data_ptr(), xc.data_ptr(), out.data_ptr(),
                                                   xc.numel(), {param, 0.0}, stream_for(out)));
  if (autograd::needs_grad({g, x})) {
    auto node = autograd::make_node<ActivationGradBackward>({g, x});
    node->op = op;
    node->param = param;
    node->g = autograd::SavedTensor(g, false);
    node->x = autograd::SavedTensor(x, false);
    autograd::record(out, node);
  }
  return out;
}

Tensor affine(const Tensor& x, double scale, double shift) { return unary(UnaryOp::affine, x, {scale, shift}); }
Tensor neg(const Tensor& x) { return unary(UnaryOp::neg, x); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::exp, x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::log, x); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::rsqrt, x); }
Tensor abs(const Tensor& x) { return unary(UnaryOp::abs, x); }
Tensor square(const Tensor& x) { return unary(UnaryOp::square, x); }
Tensor reciprocal(const Tensor& x) { return unary(UnaryOp::reciprocal, x); }
Tensor sign(const Tensor& x) { return unary(UnaryOp::sign, x, {}, /*differentiable=*/false); }
Tensor pow(const Tensor& x, double exponent) { return unary(UnaryOp::pow_scalar, x, {exponent, 0.0}); }
Tensor clamp(const Tensor& x, double low, double high) {
  TESSERA_CHECK(low <= high, "clamp: low ", low, " is above high ", high);
  return unary(UnaryOp::clamp, x, {low, high});
}

Tensor tanh(const Tensor& x) { return activation(UnaryOp::tanh, x); }
Tensor sigmoid(const Tensor& x) { return activation(UnaryOp::sigmoid, x); }
Tensor relu(const Tensor& x) { return activation(UnaryOp::relu, x); }
Tensor leaky_relu(const Tensor& x, double negative_slope) { return activation(UnaryOp::leaky_relu, x, negative_slope); }
Tensor gelu(const Tensor& x) { return activation(UnaryOp::gelu, x); }
Tensor silu(const Tensor& x) { return activation(UnaryOp::silu, x); }

}  // namespace tessera
