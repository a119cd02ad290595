// Fused dropout (framework/ops/dropout.h): one kernel in the forward pass, the same kernel with
// the same (seed, offset) in the backward pass, which is therefore differentiable again.
#include "framework/ops/dropout.h"

#include "framework/ops/common.h"
#include "kernels/dropout.h"

namespace tessera {
namespace {

Tensor dropout_with_state(const Tensor& x, double p, uint64_t seed, uint64_t offset);

struct DropoutBackward : autograd::Node {
  double p = 0.0;
  uint64_t seed = 0, offset = 0;
  std::string name() const override { return "DropoutBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& g) override { return {dropout_with_state(g[0], p, seed, offset)}; }
};

// x * mask(seed, offset) / (1 - p), recording DropoutBackward with the same state.
Tensor dropout_with_state(const Tensor& x, double p, uint64_t seed, uint64_t offset) {
  const Tensor in = ops::contiguous_data(x);
  Tensor out = ops::empty_like(in);
  const float keep_threshold = static_cast<float>(1.0 - p);
  const double scale = 1.0 / (1.0 - p);
  TESSERA_DEVICE_DISPATCH(out, kernels::dropout_cpu(in.dtype(), in.data_ptr(), out.data_ptr(), in.numel(),
                                                    keep_threshold, scale, seed, offset),
                          kernels::dropout_cuda(in.dtype(), in.data_ptr(), out.data_ptr(), in.numel(), keep_threshold,
                                                scale, seed, offset, stream_for(out)));
  if (autograd::needs_grad({x})) {
    auto node = autograd::make_node<DropoutBackward>({x});
    node->p = p;
    node->seed = seed;
    node->offset = offset;
    autograd::record(out, node);
  }
  return out;
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  ops::check_defined("dropout", x);
  TESSERA_CHECK(p >= 0.0 && p < 1.0, "dropout: probability p = ", p, " must lie in [0, 1)");
  if (!training || p == 0.0) return x;
  ops::check_floating("dropout", x);
  Generator& g = gen ? *gen : default_generator();
  const uint64_t offset = g.take(x.numel());
  return dropout_with_state(x, p, g.seed(), offset);
}

}  // namespace tessera
