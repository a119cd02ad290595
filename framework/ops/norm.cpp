// layer_norm and rms_norm (framework/ops/norm.h) on the kernels of kernels/norm.h.
//
// The backward node has two paths. Without create_graph (grad mode off while it runs) it calls
// the fused kernel: dx, dweight and dbias in one pass, from the saved per-row statistics.
// Under create_graph the same gradients are built from differentiable ops, recomputing the
// statistics from x, so the result has history and second derivatives are exact; this path
// works in float for bf16/f16 inputs.
#include "framework/ops/norm.h"

#include "framework/ops/common.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/reduce.h"
#include "framework/ops/shape.h"
#include "kernels/norm.h"

namespace tessera {
namespace {

DType accumulation_dtype(DType dtype) { return dtype == DType::f64 ? DType::f64 : DType::f32; }

struct NormBackward : autograd::Node {
  bool rms = false;
  double eps = 0.0;
  autograd::SavedTensor x, weight;
  Tensor row_mean, row_rstd;  // per-row statistics (accumulation dtype), no history

  std::string name() const override { return rms ? "RmsNormBackward" : "LayerNormBackward"; }

  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor xv = x.unpack();
    const Tensor wv = weight.defined() ? weight.unpack() : Tensor();
    std::vector<Tensor> out = autograd::GradMode::is_enabled() ? composite(grads[0], xv, wv) : fused(grads[0], xv, wv);
    out.resize(next_edges.size());  // rms_norm has no bias input
    return out;
  }

  std::vector<Tensor> fused(const Tensor& g, const Tensor& xv, const Tensor& wv) {
    const int64_t cols = xv.shape().back();
    const int64_t rows = cols == 0 ? 0 : xv.numel() / cols;
    const Tensor xc = ops::contiguous_data(xv);
    const Tensor gc = ops::contiguous_data(g.dtype() == xv.dtype() ? g : g.to(xv.dtype()));
    Tensor dx, dweight, dbias;
    if (needs_input_grad(0)) dx = Tensor::empty(xv.shape(), xv.dtype(), xv.device());
    if (needs_input_grad(1)) dweight = Tensor::empty({cols}, xv.dtype(), xv.device());
    if (needs_input_grad(2)) dbias = Tensor::empty({cols}, xv.dtype(), xv.device());
    auto ptr = [](const Tensor& t) -> void* { return t.defined() ? t.data_ptr() : nullptr; };
    const Tensor wc = wv.defined() ? ops::contiguous_data(wv) : Tensor();
    TESSERA_DEVICE_DISPATCH(
        xc,
        kernels::norm_backward_cpu(xc.dtype(), rms, gc.data_ptr(), xc.data_ptr(), ptr(wc), ptr(row_mean),
                                   row_rstd.data_ptr(), ptr(dx), ptr(dweight), ptr(dbias), rows, cols),
        kernels::norm_backward_cuda(xc.dtype(), rms, gc.data_ptr(), xc.data_ptr(), ptr(wc), ptr(row_mean),
                                    row_rstd.data_ptr(), ptr(dx), ptr(dweight), ptr(dbias), rows, cols,
                                    stream_for(xc)));
    return {dx, dweight, dbias};
  }

  // The same gradients from differentiable ops (float for half inputs).
  std::vector<Tensor> composite(const Tensor& g_in, const Tensor& x_in, const Tensor& w_in) {
    const DType dtype = x_in.dtype();
    const DType acc = accumulation_dtype(dtype);
    const Tensor xs = cast(x_in, acc), g = cast(g_in, acc);
    const Tensor w = w_in.defined() ? cast(w_in, acc) : Tensor();
    const int64_t cols = x_in.shape().back();
    const Tensor centered = rms ? xs : sub(xs, mean_last(xs));
    const Tensor r = rsqrt(affine(mean_last(square(centered)), 1.0, eps));
    const Tensor xhat = mul(centered, r);
    const Tensor wdy = w.defined() ? mul(g, w) : g;
    const Tensor projection = mul(xhat, mean_last(mul(wdy, xhat)));
    Tensor dx, dweight, dbias;
    if (needs_input_grad(0)) {
      const Tensor inner = rms ? sub(wdy, projection) : sub(sub(wdy, mean_last(wdy)), projection);
      dx = cast(mul(r, inner), dtype);
    }
    if (needs_input_grad(1)) dweight = cast(sum_to(mul(g, xhat), {cols}), dtype);
    if (needs_input_grad(2)) dbias = cast(sum_to(g, {cols}), dtype);
    return {dx, dweight, dbias};
  }

  static Tensor mean_last(const Tensor& t) { return mean(t, {-1}, /*keepdim=*/true); }

  void release_saved() override {
    x.reset();
    weight.reset();
    row_mean = Tensor();
    row_rstd = Tensor();
  }
};

void check_affine(const char* op, const Tensor& x, const Tensor& p, const char* name) {
  if (!p.defined()) return;
  const int64_t cols = x.shape().back();
  TESSERA_CHECK(p.dim() == 1 && p.shape()[0] == cols, op, ": ", name, " has shape ", shape_str(p.shape()),
                " but the input ", shape_str(x.shape()), " needs [", cols, "] (the size of its last dimension)");
  ops::check_same_device(op, x, p);
  ops::check_same_dtype(op, x, p);
}

Tensor norm_impl(const char* op, bool rms, const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  ops::check_defined(op, x);
  ops::check_floating(op, x);
  TESSERA_CHECK(x.dim() >= 1, op, ": the input must have at least one dimension (normalises over the last), got a "
                                  "0-d tensor");
  TESSERA_CHECK(eps >= 0.0, op, ": eps must be non-negative, got ", eps);
  check_affine(op, x, weight, "weight");
  check_affine(op, x, bias, "bias");
  const int64_t cols = x.shape().back();
  const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
  const Tensor xc = ops::contiguous_data(x);
  const Tensor wc = weight.defined() ? ops::contiguous_data(weight) : Tensor();
  const Tensor bc = bias.defined() ? ops::contiguous_data(bias) : Tensor();
  const DType acc = accumulation_dtype(x.dtype());
  Tensor out = ops::empty_like(xc);
  Tensor row_mean = rms ? Tensor() : Tensor::empty({rows}, acc, x.device());
  Tensor row_rstd = Tensor::empty({rows}, acc, x.device());
  auto ptr = [](const Tensor& t) -> void* { return t.defined() ? t.data_ptr() : nullptr; };
  TESSERA_DEVICE_DISPATCH(
      out,
      kernels::norm_forward_cpu(x.dtype(), rms, xc.data_ptr(), ptr(wc), ptr(bc), out.data_ptr(), ptr(row_mean),
                                row_rstd.data_ptr(), rows, cols, eps),
      kernels::norm_forward_cuda(x.dtype(), rms, xc.data_ptr(), ptr(wc), ptr(bc), out.data_ptr(), ptr(row_mean),
                                 row_rstd.data_ptr(), rows, cols, eps, stream_for(out)));
  const std::vector<Tensor> inputs = rms ? std::vector<Tensor>{x, weight} : std::vector<Tensor>{x, weight, bias};
  if (autograd::needs_grad(inputs)) {
    auto node = autograd::make_node<NormBackward>(inputs);
    node->rms = rms;
    node->eps = eps;
    node->x = autograd::SavedTensor(x, false);
    if (weight.defined()) node->weight = autograd::SavedTensor(weight, false);
    node->row_mean = row_mean;
    node->row_rstd = row_rstd;
    autograd::record(out, node);
  }
  return out;
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  return norm_impl("layer_norm", false, x, weight, bias, eps);
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  return norm_impl("rms_norm", true, x, weight, Tensor(), eps);
}

}  // namespace tessera
