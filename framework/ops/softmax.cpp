// softmax and log_softmax (framework/ops/softmax.h) on the kernels of kernels/softmax.h.
//
// The tensor is viewed as [outer, n, inner] around the softmax dimension (n), which is what the
// kernels take. The backward saves the output; with grad mode off it runs the fused kernel, and
// under create_graph it uses differentiable ops on the saved output, whose history leads back
// through this node, so second derivatives come out right.
#include "framework/ops/softmax.h"

#include "framework/ops/common.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/reduce.h"
#include "kernels/softmax.h"

namespace tessera {
namespace {

struct Extents {
  int64_t outer = 1, n = 1, inner = 1;
};

Extents extents_around(const Shape& shape, int64_t dim) {
  Extents e;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (d < dim) e.outer *= shape[d];
    else if (d == dim) e.n = shape[d];
    else e.inner *= shape[d];
  }
  return e;
}

struct SoftmaxBackward : autograd::Node {
  bool log = false;
  int64_t dim = 0;
  autograd::SavedTensor y;
  std::string name() const override { return log ? "LogSoftmaxBackward" : "SoftmaxBackward"; }

  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor yv = y.unpack();
    const Tensor& g = grads[0];
    if (autograd::GradMode::is_enabled()) {
      if (log) return {sub(g, mul(exp(yv), sum(g, {dim}, /*keepdim=*/true)))};
      return {mul(yv, sub(g, sum(mul(g, yv), {dim}, /*keepdim=*/true)))};
    }
    const Tensor yc = ops::contiguous_data(yv);
    const Tensor gc = ops::contiguous_data(g.dtype() == yv.dtype() ? g : g.to(yv.dtype()));
    Tensor dx = ops::empty_like(yc);
    const Extents e = extents_around(yv.shape(), dim);
    TESSERA_DEVICE_DISPATCH(dx, kernels::softmax_backward_cpu(yc.dtype(), log, yc.data_ptr(), gc.data_ptr(),
                                                              dx.data_ptr(), e.outer, e.n, e.inner),
                            kernels::softmax_backward_cuda(yc.dtype(), log, yc.data_ptr(), gc.data_ptr(),
                                                           dx.data_ptr(), e.outer, e.n, e.inner, stream_for(dx)));
    return {dx};
  }
  void release_saved() override { y.reset(); }
};

Tensor softmax_impl(const char* op, bool log, const Tensor& x, int64_t dim_in) {
  ops::check_defined(op, x);
  ops::check_floating(op, x);
  const int64_t dim = ops::normalize_dim(op, dim_in, x.dim());
  const Tensor xc = ops::contiguous_data(x);
  Tensor out = ops::empty_like(xc);
  const Extents e = extents_around(x.shape(), dim);  // a 0-d tensor is one row of one element
  TESSERA_DEVICE_DISPATCH(out, kernels::softmax_forward_cpu(x.dtype(), log, xc.data_ptr(), out.data_ptr(), e.outer,
                                                            e.n, e.inner),
                          kernels::softmax_forward_cuda(x.dtype(), log, xc.data_ptr(), out.data_ptr(), e.outer, e.n,
                                                        e.inner, stream_for(out)));
  if (autograd::needs_grad({x})) {
    auto node = autograd::make_node<SoftmaxBackward>({x});
    node->log = log;
    node->dim = dim;
    autograd::record(out, node);
    node->y = autograd::SavedTensor(out, true);  // after record: out's grad_fn is node
  }
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl("softmax", false, x, dim); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl("log_softmax", true, x, dim); }

}  // namespace tessera
