// Loss functions (framework/ops/loss.h). cross_entropy runs on the fused kernels of
// kernels/loss.h; mse_loss and l1_loss are compositions of elementwise ops and reductions;
// binary_cross_entropy_with_logits computes its value with raw elementwise kernels and has its
// own backward node written with ops (exact at x = 0, twice differentiable).
#include "framework/ops/loss.h"

#include "framework/autograd/grad_mode.h"
#include "framework/ops/common.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/reduce.h"
#include "framework/ops/shape.h"
#include "framework/ops/softmax.h"
#include "kernels/loss.h"

namespace tessera {
namespace {

DType accumulation_dtype(DType dtype) { return dtype == DType::f64 ? DType::f64 : DType::f32; }

Tensor reduce_loss(const Tensor& elementwise, Reduction reduction) {
  switch (reduction) {
    case Reduction::mean: return mean(elementwise);
    case Reduction::sum: return sum(elementwise);
    case Reduction::none: return elementwise;
  }
  return elementwise;
}

struct CrossEntropyBackward : autograd::Node {
  autograd::SavedTensor logits;
  Tensor targets, lse, inv_count;  // no history; inv_count only for Reduction::mean
  Reduction reduction = Reduction::mean;
  int64_t ignore_index = -100;
  double smoothing = 0.0;

  std::string name() const override { return "CrossEntropyBackward"; }

  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor x = logits.unpack();
    const Tensor g = grads[0].dtype() == x.dtype() ? grads[0] : grads[0].to(x.dtype());
    if (autograd::GradMode::is_enabled()) return {composite(x, g)};
    const int64_t classes = x.shape().back();
    const int64_t rows = x.numel() / classes;
    const Tensor xc = ops::contiguous_data(x);
    const Tensor gc = ops::contiguous_data(g);
    Tensor dx = ops::empty_like(xc);
    const bool per_row = reduction == Reduction::none;
    const void* scale = inv_count.defined() ? inv_count.data_ptr() : nullptr;
    TESSERA_DEVICE_DISPATCH(
        dx,
        kernels::cross_entropy_backward_cpu(x.dtype(), targets.dtype(), xc.data_ptr(), lse.data_ptr(),
                                            targets.data_ptr(), gc.data_ptr(), per_row, scale, rows, classes,
                                            ignore_index, smoothing, dx.data_ptr()),
        kernels::cross_entropy_backward_cuda(x.dtype(), targets.dtype(), xc.data_ptr(), lse.data_ptr(),
                                             targets.data_ptr(), gc.data_ptr(), per_row, scale, rows, classes,
                                             ignore_index, smoothing, dx.data_ptr(), stream_for(dx)));
    return {dx};
  }

  // (softmax(x) * valid - q) * g * scale with ops, q the smoothed one-hot (0 on ignored rows).
  Tensor composite(const Tensor& x, const Tensor& g) const {
    const int64_t classes = x.shape().back();
    const int64_t rows = x.numel() / classes;
    Tensor dist = Tensor::empty(x.shape(), x.dtype(), x.device());
    Shape valid_shape = targets.shape();
    valid_shape.push_back(1);
    Tensor valid = Tensor::empty(valid_shape, x.dtype(), x.device());
    TESSERA_DEVICE_DISPATCH(
        dist,
        kernels::cross_entropy_target_dist_cpu(x.dtype(), targets.dtype(), targets.data_ptr(), rows, classes,
                                               ignore_index, smoothing, dist.data_ptr(), valid.data_ptr()),
        kernels::cross_entropy_target_dist_cuda(x.dtype(), targets.dtype(), targets.data_ptr(), rows, classes,
                                                ignore_index, smoothing, dist.data_ptr(), valid.data_ptr(),
                                                stream_for(dist)));
    Tensor scale = g;
    if (reduction == Reduction::none) scale = unsqueeze(g, -1);
    if (reduction == Reduction::mean) scale = mul(g, cast(inv_count, x.dtype()));
    return mul(sub(mul(softmax(x, -1), valid), dist), scale);
  }

  void release_saved() override {
    logits.reset();
    targets = Tensor();
    lse = Tensor();
    inv_count = Tensor();
  }
};

void check_pair(const char* op, const Tensor& input, const Tensor& target) {
  ops::check_defined(op, input, "input");
  ops::check_defined(op, target, "target");
  TESSERA_CHECK(input.shape() == target.shape(), op, ": input ", shape_str(input.shape()), " and target ",
                shape_str(target.shape()), " must have the same shape");
  ops::check_same_device(op, input, target);
  ops::check_same_dtype(op, input, target);
  ops::check_floating(op, input);
}

// Backward of the elementwise loss max(x, 0) - x t + log(1 + exp(-|x|)).
struct BceWithLogitsBackward : autograd::Node {
  autograd::SavedTensor logits, targets;
  std::string name() const override { return "BinaryCrossEntropyWithLogitsBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor& g = grads[0];
    const Tensor x = logits.unpack(), t = targets.unpack();
    Tensor dx, dt;
    if (needs_input_grad(0)) dx = mul(g, sub(sigmoid(x), t));
    if (needs_input_grad(1)) dt = neg(mul(g, x));
    return {dx, dt};
  }
  void release_saved() override {
    logits.reset();
    targets.reset();
  }
};

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, double label_smoothing,
                     Reduction reduction) {
  const char* op = "cross_entropy";
  ops::check_defined(op, logits, "logits");
  ops::check_defined(op, targets, "targets");
  ops::check_floating(op, logits);
  TESSERA_CHECK(logits.dim() >= 1, op, ": logits must have at least one dimension (classes last), got a 0-d tensor");
  TESSERA_CHECK(targets.dtype() == DType::i64 || targets.dtype() == DType::i32, op,
                ": targets must be class indices of dtype i64 or i32, got ", dtype_name(targets.dtype()), " ",
                shape_str(targets.shape()));
  ops::check_same_device(op, logits, targets);
  const int64_t classes = logits.shape().back();
  TESSERA_CHECK(classes > 0, op, ": logits ", shape_str(logits.shape()), " have no classes (last dimension is 0)");
  const Shape expected(logits.shape().begin(), logits.shape().end() - 1);
  TESSERA_CHECK(targets.shape() == expected, op, ": logits ", shape_str(logits.shape()), " need targets of shape ",
                shape_str(expected), " (classes are the last dimension of the logits), got targets ",
                shape_str(targets.shape()));
  TESSERA_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op, ": label_smoothing must lie in [0, 1], got ",
                label_smoothing);

  const int64_t rows = shape_numel(expected);
  const DType dtype = logits.dtype(), acc = accumulation_dtype(dtype);
  const Tensor xc = ops::contiguous_data(logits);
  const Tensor tc = ops::contiguous_data(targets);
  Tensor row_loss = Tensor::empty({rows}, acc, logits.device());
  Tensor lse = Tensor::empty({rows}, acc, logits.device());
  TESSERA_DEVICE_DISPATCH(
      xc,
      kernels::cross_entropy_forward_cpu(dtype, tc.dtype(), xc.data_ptr(), tc.data_ptr(), rows, classes, ignore_index,
                                         label_smoothing, row_loss.data_ptr(), lse.data_ptr()),
      kernels::cross_entropy_forward_cuda(dtype, tc.dtype(), xc.data_ptr(), tc.data_ptr(), rows, classes,
                                          ignore_index, label_smoothing, row_loss.data_ptr(), lse.data_ptr(),
                                          stream_for(xc)));
  Tensor out, inv_count;
  if (reduction == Reduction::none) {
    const Tensor per_target = row_loss.as_strided(expected, contiguous_strides(expected), 0);
    out = per_target;
    if (dtype != acc) {
      out = Tensor::empty(expected, dtype, logits.device());
      copy_into(out, per_target);
    }
  } else {
    out = Tensor::empty({}, dtype, logits.device());
    inv_count = Tensor::empty({}, acc, logits.device());
    const bool is_mean = reduction == Reduction::mean;
    TESSERA_DEVICE_DISPATCH(
        out,
        kernels::cross_entropy_reduce_cpu(dtype, tc.dtype(), row_loss.data_ptr(), tc.data_ptr(), rows, ignore_index,
                                          is_mean, out.data_ptr(), inv_count.data_ptr()),
        kernels::cross_entropy_reduce_cuda(dtype, tc.dtype(), row_loss.data_ptr(), tc.data_ptr(), rows, ignore_index,
                                           is_mean, out.data_ptr(), inv_count.data_ptr(), stream_for(out)));
    if (!is_mean) inv_count = Tensor();
  }
  if (autograd::needs_grad({logits})) {
    auto node = autograd::make_node<CrossEntropyBackward>({logits});
    node->logits = autograd::SavedTensor(logits, false);
    node->targets = tc;
    node->lse = lse;
    node->inv_count = inv_count;
    node->reduction = reduction;
    node->ignore_index = ignore_index;
    node->smoothing = label_smoothing;
    autograd::record(out, node);
  }
  return out;
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pair("mse_loss", input, target);
  return reduce_loss(square(sub(input, target)), reduction);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pair("l1_loss", input, target);
  return reduce_loss(abs(sub(input, target)), reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets, Reduction reduction) {
  check_pair("binary_cross_entropy_with_logits", logits, targets);
  Tensor elementwise;
  {
    NoGradGuard no_grad;  // the value only; the node below supplies the gradient
    const Tensor softplus_neg_abs = log(affine(exp(neg(abs(logits))), 1.0, 1.0));
    elementwise = add(sub(relu(logits), mul(logits, targets)), softplus_neg_abs);
  }
  if (autograd::needs_grad({logits, targets})) {
    auto node = autograd::make_node<BceWithLogitsBackward>({logits, targets});
    node->logits = autograd::SavedTensor(logits, false);
    node->targets = autograd::SavedTensor(targets, false);
    autograd::record(elementwise, node);
  }
  return reduce_loss(elementwise, reduction);
}

}  // namespace tessera
