// batch_norm, sync_batch_norm and group_norm (framework/ops/batch_norm.h).
//
// The batch-norm backward node has two paths, like layer_norm's: with grad mode off it calls
// the fused kernel (dx, dweight, dbias from the saved per-channel mean and rstd); under
// create_graph it builds the same gradients from differentiable ops in float (double for
// f64), recomputing the batch statistics from x so that their dependence on x is part of the
// graph. sync_batch_norm is composed of differentiable ops around the caller's replica sum,
// so both derivatives come from autograd. group_norm is a composition of layer_norm and
// broadcast ops.
#include "framework/ops/batch_norm.h"

#include "framework/ops/common.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/index.h"
#include "framework/ops/norm.h"
#include "framework/ops/reduce.h"
#include "framework/ops/shape.h"
#include "kernels/batch_norm.h"

namespace tessera {
namespace {

DType accumulation_dtype(DType dtype) { return dtype == DType::f64 ? DType::f64 : DType::f32; }

void* ptr(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }

// [1, C, 1, ...] for broadcasting a per-channel tensor against x.
Shape channel_shape(const Tensor& x) {
  Shape shape(static_cast<size_t>(x.dim()), 1);
  shape[1] = x.shape()[1];
  return shape;
}

// Every dim except the channel dim.
std::vector<int64_t> reduced_dims(const Tensor& x) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  return dims;
}

int64_t spatial_size(const Tensor& x) {
  int64_t s = 1;
  for (int64_t d = 2; d < x.dim(); ++d) s *= x.shape()[d];
  return s;
}

struct BatchNormBackward : autograd::Node {
  autograd::SavedTensor x, weight;
  Tensor saved_mean, saved_rstd;  // [C], accumulation dtype, no history
  bool use_batch_stats = true;
  double eps = 1e-5;

  std::string name() const override { return "BatchNormBackward"; }

  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor xv = x.unpack();
    const Tensor wv = weight.defined() ? weight.unpack() : Tensor();
    return autograd::GradMode::is_enabled() ? composite(grads[0], xv, wv) : fused(grads[0], xv, wv);
  }

  std::vector<Tensor> fused(const Tensor& g, const Tensor& xv, const Tensor& wv) {
    const Tensor xc = ops::contiguous_data(xv);
    const Tensor gc = ops::contiguous_data(g.dtype() == xv.dtype() ? g : g.to(xv.dtype()));
    const Tensor wc = wv.defined() ? ops::contiguous_data(wv) : Tensor();
    const int64_t channels = xv.shape()[1];
    Tensor dx, dweight, dbias;
    if (needs_input_grad(0)) dx = ops::empty_like(xc);
    if (needs_input_grad(1)) dweight = Tensor::empty({channels}, xv.dtype(), xv.device());
    if (needs_input_grad(2)) dbias = Tensor::empty({channels}, xv.dtype(), xv.device());
    kernels::BatchNormBackwardArgs a;
    a.dtype = xv.dtype();
    a.batch = xv.shape()[0];
    a.channels = channels;
    a.spatial = spatial_size(xv);
    a.dy = gc.data_ptr();
    a.x = xc.data_ptr();
    a.weight = ptr(wc);
    a.mean = saved_mean.data_ptr();
    a.rstd = saved_rstd.data_ptr();
    a.use_batch_stats = use_batch_stats;
    a.dx = ptr(dx);
    a.dweight = ptr(dweight);
    a.dbias = ptr(dbias);
    TESSERA_DEVICE_DISPATCH(xc, kernels::batch_norm_backward_cpu(a), kernels::batch_norm_backward_cuda(a, stream_for(xc)));
    return {dx, dweight, dbias};
  }

  // The same gradients from differentiable ops (float for half inputs).
  std::vector<Tensor> composite(const Tensor& g_in, const Tensor& x_in, const Tensor& w_in) {
    const DType dtype = x_in.dtype();
    const DType acc = accumulation_dtype(dtype);
    const Shape stat_shape = channel_shape(x_in);
    const std::vector<int64_t> dims = reduced_dims(x_in);
    const Tensor xs = cast(x_in, acc), g = cast(g_in, acc);
    const Tensor w = w_in.defined() ? reshape(cast(w_in, acc), stat_shape) : Tensor();
    auto channel_mean = [&](const Tensor& t) { return mean(t, dims, /*keepdim=*/true); };
    Tensor centered, r;
    if (use_batch_stats) {
      centered = sub(xs, channel_mean(xs));
      r = rsqrt(affine(channel_mean(square(centered)), 1.0, eps));
    } else {  // running statistics: constants
      centered = sub(xs, reshape(saved_mean, stat_shape));
      r = reshape(saved_rstd, stat_shape);
    }
    const Tensor xhat = mul(centered, r);
    const Tensor wdy = w.defined() ? mul(g, w) : g;
    Tensor dx, dweight, dbias;
    if (needs_input_grad(0)) {
      const Tensor inner =
          use_batch_stats ? sub(sub(wdy, channel_mean(wdy)), mul(xhat, channel_mean(mul(wdy, xhat)))) : wdy;
      dx = cast(mul(r, inner), dtype);
    }
    const int64_t channels = x_in.shape()[1];
    if (needs_input_grad(1)) dweight = cast(reshape(sum(mul(g, xhat), dims), {channels}), dtype);
    if (needs_input_grad(2)) dbias = cast(reshape(sum(g, dims), {channels}), dtype);
    return {dx, dweight, dbias};
  }

  void release_saved() override {
    x.reset();
    weight.reset();
    saved_mean = Tensor();
    saved_rstd = Tensor();
  }
};

void check_channel_tensor(const char* op, const Tensor& x, const Tensor& t, const char* name, bool same_dtype) {
  if (!t.defined()) return;
  const int64_t channels = x.shape()[1];
  TESSERA_CHECK(t.dim() == 1 && t.shape()[0] == channels, op, ": ", name, " has shape ", shape_str(t.shape()),
                " but the input ", shape_str(x.shape()), " has ", channels, " channels");
  ops::check_same_device(op, x, t);
  if (same_dtype) {
    ops::check_same_dtype(op, x, t);
  } else {
    ops::check_floating(op, t);
  }
}

// The checks batch_norm and sync_batch_norm share (running statistics optional).
void check_batch_norm_arguments(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                const Tensor& running_mean, const Tensor& running_var, double momentum, double eps,
                                const Tensor& num_batches_tracked) {
  ops::check_defined(op, x);
  ops::check_floating(op, x);
  TESSERA_CHECK(x.dim() >= 2, op, ": input must be [N, C, ...], got ", shape_str(x.shape()));
  TESSERA_CHECK(eps >= 0.0, op, ": eps must be non-negative, got ", eps);
  check_channel_tensor(op, x, weight, "weight", true);
  check_channel_tensor(op, x, bias, "bias", true);
  check_channel_tensor(op, x, running_mean, "running_mean", false);
  check_channel_tensor(op, x, running_var, "running_var", false);
  TESSERA_CHECK(running_mean.defined() == running_var.defined(), op,
                ": running_mean and running_var must be given together");
  if (running_mean.defined()) {
    TESSERA_CHECK(running_mean.dtype() == running_var.dtype(), op, ": running_mean (", dtype_name(running_mean.dtype()),
                  ") and running_var (", dtype_name(running_var.dtype()), ") must have one dtype");
    TESSERA_CHECK(running_mean.is_contiguous() && running_var.is_contiguous(), op,
                  ": running statistics must be contiguous (they are updated in place)");
  }
  if (num_batches_tracked.defined()) {
    TESSERA_CHECK(num_batches_tracked.dtype() == DType::i64 && num_batches_tracked.numel() == 1, op,
                  ": num_batches_tracked must be a one-element i64 tensor, got ", dtype_name(num_batches_tracked.dtype()),
                  " ", shape_str(num_batches_tracked.shape()));
    ops::check_same_device(op, x, num_batches_tracked);
  }
  TESSERA_CHECK(momentum >= 0.0 && momentum <= 1.0, op, ": momentum must lie in [0, 1], got ", momentum);
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps,
                  const Tensor& num_batches_tracked) {
  const char* op = "batch_norm";
  check_batch_norm_arguments(op, x, weight, bias, running_mean, running_var, momentum, eps, num_batches_tracked);
  const bool have_running = running_mean.defined();
  TESSERA_CHECK(training || have_running, op, ": evaluation mode (training=false) needs running_mean and running_var");
  const int64_t count = x.shape()[0] * spatial_size(x);
  TESSERA_CHECK(!training || count > 1, op, ": training needs more than one value per channel, got input ",
                shape_str(x.shape()));

  const Tensor xc = ops::contiguous_data(x);
  const Tensor wc = weight.defined() ? ops::contiguous_data(weight) : Tensor();
  const Tensor bc = bias.defined() ? ops::contiguous_data(bias) : Tensor();
  const int64_t channels = x.shape()[1];
  const DType acc = accumulation_dtype(x.dtype());
  Tensor out = ops::empty_like(xc);
  Tensor batch_mean = Tensor::empty({channels}, acc, x.device());
  Tensor batch_rstd = Tensor::empty({channels}, acc, x.device());
  kernels::BatchNormForwardArgs a;
  a.dtype = x.dtype();
  a.batch = x.shape()[0];
  a.channels = channels;
  a.spatial = spatial_size(x);
  a.x = xc.data_ptr();
  a.weight = ptr(wc);
  a.bias = ptr(bc);
  a.y = out.data_ptr();
  a.mean = batch_mean.data_ptr();
  a.rstd = batch_rstd.data_ptr();
  a.use_batch_stats = training;
  a.eps = eps;
  a.momentum = momentum;
  a.running_mean = ptr(running_mean);
  a.running_var = ptr(running_var);
  if (have_running) a.running_dtype = running_mean.dtype();
  a.num_batches_tracked = num_batches_tracked.defined() ? num_batches_tracked.data<int64_t>() : nullptr;
  TESSERA_DEVICE_DISPATCH(out, kernels::batch_norm_forward_cpu(a), kernels::batch_norm_forward_cuda(a, stream_for(out)));

  if (autograd::needs_grad({x, weight, bias})) {
    auto node = autograd::make_node<BatchNormBackward>({x, weight, bias});
    node->x = autograd::SavedTensor(x, false);
    if (weight.defined()) node->weight = autograd::SavedTensor(weight, false);
    node->saved_mean = batch_mean;
    node->saved_rstd = batch_rstd;
    node->use_batch_stats = training;
    node->eps = eps;
    autograd::record(out, node);
  }
  return out;
}

Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, double momentum, double eps, const Tensor& num_batches_tracked,
                       const ReplicaSum& replica_sum) {
  const char* op = "sync_batch_norm";
  check_batch_norm_arguments(op, x, weight, bias, running_mean, running_var, momentum, eps, num_batches_tracked);
  TESSERA_CHECK(static_cast<bool>(replica_sum), op, ": no replica sum given (a differentiable sum over the replicas)");
  const int64_t count = x.shape()[0] * spatial_size(x);
  TESSERA_CHECK(count > 0, op, ": every replica needs at least one value per channel, got input ",
                shape_str(x.shape()));
  const int64_t channels = x.shape()[1];
  const DType acc = accumulation_dtype(x.dtype());
  const Shape stat_shape = channel_shape(x);
  const std::vector<int64_t> dims = reduced_dims(x);
  const Tensor xs = cast(x, acc);

  // One collective per call: the per-channel sum, sum of squares and count, stacked.
  const Tensor local = stack({sum(xs, dims), sum(square(xs), dims),
                              Tensor::full({channels}, static_cast<double>(count), acc, x.device())},
                             0);
  const Tensor totals = replica_sum(local);
  TESSERA_CHECK(totals.defined() && totals.shape() == local.shape() && totals.dtype() == acc &&
                    totals.device() == x.device(),
                op, ": the replica sum must return a tensor like its argument (", shape_str(local.shape()), " ",
                dtype_name(acc), " on ", x.device().str(), ")");
  auto row = [&](int64_t r) { return reshape(slice(totals, 0, r, r + 1), {channels}); };
  const Tensor n = row(2).detach();
  const Tensor batch_mean = div(row(0), n);
  // Biased variance E[x^2] - E[x]^2; rounding can take it a hair below zero.
  const Tensor batch_var = relu(sub(div(row(1), n), square(batch_mean)));
  const Tensor rstd = rsqrt(affine(batch_var, 1.0, eps));
  // y = x * scale + shift per channel (the fused kernel's form).
  const Tensor scale = weight.defined() ? mul(rstd, cast(weight, acc)) : rstd;
  Tensor shift = neg(mul(batch_mean, scale));
  if (bias.defined()) shift = add(shift, cast(bias, acc));
  const Tensor y = add(mul(xs, reshape(scale, stat_shape)), reshape(shift, stat_shape));

  if (running_mean.defined()) {
    NoGradGuard no_grad;
    const Tensor unbiased = div(mul(batch_var, n), affine(n, 1.0, -1.0));
    auto blend = [momentum, acc](const Tensor& running, const Tensor& batch_value) {
      return add(affine(cast(running, acc), 1.0 - momentum, 0.0), affine(batch_value, momentum, 0.0));
    };
    copy_into(running_mean, blend(running_mean, batch_mean));
    copy_into(running_var, blend(running_var, unbiased));
    // i64 has no arithmetic kernels; the count stays exact in f64 up to 2^53.
    if (num_batches_tracked.defined())
      copy_into(num_batches_tracked, affine(cast(num_batches_tracked, DType::f64), 1.0, 1.0));
  }
  return cast(y, x.dtype());
}

Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "group_norm";
  ops::check_defined(op, x);
  ops::check_floating(op, x);
  TESSERA_CHECK(x.dim() >= 2, op, ": input must be [N, C, ...], got ", shape_str(x.shape()));
  const int64_t channels = x.shape()[1];
  TESSERA_CHECK(num_groups > 0 && channels % num_groups == 0, op, ": num_groups=", num_groups,
                " must be positive and divide the ", channels, " channels of input ", shape_str(x.shape()));
  check_channel_tensor(op, x, weight, "weight", true);
  check_channel_tensor(op, x, bias, "bias", true);
  const Tensor rows = reshape(x, {x.shape()[0], num_groups, channels / num_groups * spatial_size(x)});
  Tensor y = reshape(layer_norm(rows, Tensor(), Tensor(), eps), x.shape());
  if (weight.defined()) y = mul(y, reshape(weight, channel_shape(x)));
  if (bias.defined()) y = add(y, reshape(bias, channel_shape(x)));
  return y;
}

}  // namespace tessera
