// Binary arithmetic with broadcasting, and the engine's gradient accumulation.
#include "framework/ops/elementwise.h"

#include "framework/ops/common.h"
#include "framework/ops/reduce.h"
#include "framework/ops/shape.h"

namespace tessera {

using kernels::BinaryOp;
using kernels::UnaryOp;

namespace ops {

Tensor binary_raw(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  check_defined(name, a, "first operand");
  check_defined(name, b, "second operand");
  check_same_device(name, a, b);
  check_same_dtype(name, a, b);
  check_floating(name, a);
  const Shape shape = broadcast_shapes(name, a.shape(), b.shape());
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  const kernels::Layout la = broadcast_layout(a, shape), lb = broadcast_layout(b, shape);
  TESSERA_DEVICE_DISPATCH(out, kernels::binary_cpu(op, a.dtype(), a.data_ptr(), la, b.data_ptr(), lb, out.data_ptr()),
                          kernels::binary_cuda(op, a.dtype(), a.data_ptr(), la, b.data_ptr(), lb, out.data_ptr(),
                                               stream_for(out)));
  return out;
}

void binary_inplace(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  check_same_device(name, a, b);
  check_same_dtype(name, a, b);
  TESSERA_ASSERT(a.is_contiguous(), name, ": in-place target must be contiguous");
  const Shape shape = broadcast_shapes(name, a.shape(), b.shape());
  TESSERA_CHECK(shape == a.shape(), name, ": cannot broadcast ", shape_str(b.shape()), " into ", shape_str(a.shape()),
                " in place");
  const kernels::Layout la = layout_of(a), lb = broadcast_layout(b, shape);
  TESSERA_DEVICE_DISPATCH(a, kernels::binary_cpu(op, a.dtype(), a.data_ptr(), la, b.data_ptr(), lb, a.data_ptr()),
                          kernels::binary_cuda(op, a.dtype(), a.data_ptr(), la, b.data_ptr(), lb, a.data_ptr(),
                                               stream_for(a)));
}

}  // namespace ops

namespace {

struct AddBackward : autograd::Node {
  Shape a_shape, b_shape;
  bool subtract = false;
  std::string name() const override { return subtract ? "SubBackward" : "AddBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override {
    Tensor ga, gb;
    if (needs_input_grad(0)) ga = sum_to(g[0], a_shape);
    if (needs_input_grad(1)) gb = subtract ? neg(sum_to(g[0], b_shape)) : sum_to(g[0], b_shape);
    return {ga, gb};
  }
};

struct MulBackward : autograd::Node {
  autograd::SavedTensor a, b;
  std::string name() const override { return "MulBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override {
    const Tensor av = a.unpack(), bv = b.unpack();
    Tensor ga, gb;
    if (needs_input_grad(0)) ga = sum_to(mul(g[0], bv), av.shape());
    if (needs_input_grad(1)) gb = sum_to(mul(g[0], av), bv.shape());
    return {ga, gb};
  }
  void release_saved() override {
    a.reset();
    b.reset();
  }
};

struct DivBackward : autograd::Node {
  autograd::SavedTensor a, b;
  std::string name() const override { return "DivBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override {
    const Tensor av = a.unpack(), bv = b.unpack();
    Tensor ga, gb;
    if (needs_input_grad(0)) ga = sum_to(div(g[0], bv), av.shape());
    if (needs_input_grad(1)) gb = sum_to(neg(div(mul(g[0], av), mul(bv, bv))), bv.shape());
    return {ga, gb};
  }
  void release_saved() override {
    a.reset();
    b.reset();
  }
};

// max/min route the gradient to the chosen operand (ties go to the first).
struct ExtremumBackward : autograd::Node {
  autograd::SavedTensor a, b;
  bool is_max = true;
  std::string name() const override { return is_max ? "MaximumBackward" : "MinimumBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override {
    const Tensor av = a.unpack(), bv = b.unpack();
    Tensor pick_a;
    {
      NoGradGuard no_grad;  // the mask is a constant
      const Tensor diff = is_max ? ops::binary_raw(BinaryOp::sub, av, bv, "maximum")
                                 : ops::binary_raw(BinaryOp::sub, bv, av, "minimum");
      pick_a = ops::unary_raw(UnaryOp::step, neg(diff), {0.0, 0.0});  // 1 where a loses
      pick_a = affine(pick_a, -1.0, 1.0);                               // 1 where a wins or ties
    }
    Tensor ga, gb;
    if (needs_input_grad(0)) ga = sum_to(mul(g[0], pick_a), av.shape());
    if (needs_input_grad(1)) gb = sum_to(mul(g[0], affine(pick_a, -1.0, 1.0)), bv.shape());
    return {ga, gb};
  }
  void release_saved() override {
    a.reset();
    b.reset();
  }
};

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = ops::binary_raw(BinaryOp::add, a, b, "add");
  if (autograd::needs_grad({a, b})) {
    auto node = autograd::make_node<AddBackward>({a, b});
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    autograd::record(out, node);
  }
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = ops::binary_raw(BinaryOp::sub, a, b, "sub");
  if (autograd::needs_grad({a, b})) {
    auto node = autograd::make_node<AddBackward>({a, b});
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    node->subtract = true;
    autograd::record(out, node);
  }
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = ops::binary_raw(BinaryOp::mul, a, b, "mul");
  if (autograd::needs_grad({a, b})) {
    auto node = autograd::make_node<MulBackward>({a, b});
    node->a = autograd::SavedTensor(a, false);
    node->b = autograd::SavedTensor(b, false);
    autograd::record(out, node);
  }
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = ops::binary_raw(BinaryOp::div, a, b, "div");
  if (autograd::needs_grad({a, b})) {
    auto node = autograd::make_node<DivBackward>({a, b});
    node->a = autograd::SavedTensor(a, false);
    node->b = autograd::SavedTensor(b, false);
    autograd::record(out, node);
  }
  return out;
}

static Tensor extremum(const Tensor& a, const Tensor& b, bool is_max) {
  Tensor out = ops::binary_raw(is_max ? BinaryOp::maximum : BinaryOp::minimum, a, b, is_max ? "maximum" : "minimum");
  if (autograd::needs_grad({a, b})) {
    auto node = autograd::make_node<ExtremumBackward>({a, b});
    node->a = autograd::SavedTensor(a, false);
    node->b = autograd::SavedTensor(b, false);
    node->is_max = is_max;
    autograd::record(out, node);
  }
  return out;
}

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(a, b, true); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(a, b, false); }

Tensor sum_to(const Tensor& t, const Shape& shape) {
  if (t.shape() == shape) return t;
  const int64_t lead = t.dim() - static_cast<int64_t>(shape.size());
  TESSERA_ASSERT(lead >= 0, "sum_to: ", shape_str(t.shape()), " -> ", shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t i = 0; i < t.dim(); ++i)
    if (i < lead || (shape[i - lead] == 1 && t.shape()[i] != 1)) dims.push_back(i);
  Tensor summed = dims.empty() ? t : sum(t, dims, /*keepdim=*/true);
  return summed.shape() == shape ? summed : reshape(summed, shape);
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, double s) { return affine(a, 1.0, s); }
Tensor operator+(double s, const Tensor& a) { return affine(a, 1.0, s); }
Tensor operator-(const Tensor& a, double s) { return affine(a, 1.0, -s); }
Tensor operator-(double s, const Tensor& a) { return affine(a, -1.0, s); }
Tensor operator*(const Tensor& a, double s) { return affine(a, s, 0.0); }
Tensor operator*(double s, const Tensor& a) { return affine(a, s, 0.0); }
Tensor operator/(const Tensor& a, double s) { return affine(a, 1.0 / s, 0.0); }
Tensor operator/(double s, const Tensor& a) { return affine(reciprocal(a), s, 0.0); }

namespace autograd {

Tensor grad_sum(const Tensor& a, const Tensor& b) { return add(a, b); }

void grad_add_inplace(const Tensor& accumulator, const Tensor& value) {
  TESSERA_CHECK(accumulator.shape() == value.shape(), "gradient accumulation: shapes ",
                shape_str(accumulator.shape()), " and ", shape_str(value.shape()), " differ");
  ops::binary_inplace(BinaryOp::add, accumulator, value.dtype() == accumulator.dtype() ? value : value.to(accumulator.dtype()),
                      "gradient accumulation");
}

}  // namespace autograd
}  // namespace tessera
