// scaled_dot_product_attention (framework/ops/attention.h): argument checks, dispatch to the
// flash-attention kernels (kernels/attention.h) and the backward node. The forward keeps only
// the output and the per-row log-sum-exp; the backward recomputes the probabilities from them.
#include "framework/ops/attention.h"

#include <cmath>

#include "framework/ops/common.h"
#include "kernels/attention.h"

namespace tessera {
namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

// The kernels read rows of head_dim contiguous elements.
Tensor rows_contiguous(const Tensor& t) { return t.size(3) <= 1 || t.stride(3) == 1 ? t : t.clone_data(); }

struct AttentionBackward : autograd::Node {
  autograd::SavedTensor q, k, v, out;
  Tensor lse;  // [batch, heads, q_len], no history
  bool causal = false;
  double scale = 1.0;
  bool deterministic = false;

  std::string name() const override { return "AttentionBackward"; }

  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    TESSERA_CHECK(!autograd::GradMode::is_enabled(), kOp,
                  ": double backward (create_graph=true) through attention is not supported; the flash-attention "
                  "backward kernels are not differentiable (build attention from matmul and softmax ops if second "
                  "derivatives are needed)");
    const Tensor qv = q.unpack(), kv = k.unpack(), vv = v.unpack(), ov = out.unpack();
    const Tensor g = rows_contiguous(grads[0].dtype() == qv.dtype() ? grads[0] : grads[0].to(qv.dtype()));
    TESSERA_CHECK(g.shape() == ov.shape(), kOp, ": gradient of shape ", shape_str(g.shape()),
                  " does not match the output ", shape_str(ov.shape()));
    Tensor dq = ops::empty_like(qv), dk = ops::empty_like(kv), dv = ops::empty_like(vv);
    kernels::AttentionArgs a = attention_kernel_args(qv, kv, vv, causal, scale, {ov, lse, g, dq, dk, dv});
    a.deterministic = deterministic;
    TESSERA_DEVICE_DISPATCH(qv, kernels::attention_backward_cpu(a), kernels::attention_backward_cuda(a, stream_for(qv)));
    return {dq, dk, dv};
  }

  void release_saved() override {
    q.reset();
    k.reset();
    v.reset();
    out.reset();
    lse = Tensor();
  }
};

void check_arguments(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  ops::check_defined(kOp, q, "q");
  ops::check_defined(kOp, k, "k");
  ops::check_defined(kOp, v, "v");
  ops::check_same_device(kOp, q, k);
  ops::check_same_device(kOp, q, v);
  ops::check_same_dtype(kOp, q, k);
  ops::check_same_dtype(kOp, q, v);
  ops::check_floating(kOp, q);
  TESSERA_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, kOp,
                ": expected q [batch, heads, q_len, head_dim] and k, v [batch, kv_heads, kv_len, head_dim], got q ",
                shape_str(q.shape()), ", k ", shape_str(k.shape()), ", v ", shape_str(v.shape()));
  TESSERA_CHECK(k.shape() == v.shape(), kOp, ": k ", shape_str(k.shape()), " and v ", shape_str(v.shape()),
                " must have the same shape");
  TESSERA_CHECK(q.size(0) == k.size(0) && q.size(3) == k.size(3), kOp, ": q ", shape_str(q.shape()), " and k ",
                shape_str(k.shape()), " must agree in batch (dim 0) and head_dim (dim 3)");
  TESSERA_CHECK(q.size(3) > 0, kOp, ": head_dim must be positive, got q ", shape_str(q.shape()));
  TESSERA_CHECK(k.size(1) > 0 && q.size(1) % k.size(1) == 0, kOp, ": q has ", q.size(1),
                " heads, which is not a multiple of the ", k.size(1), " heads of k and v");
  TESSERA_CHECK(std::isfinite(scale) && scale >= 0.0, kOp, ": scale must be positive (or 0 for 1/sqrt(head_dim)), got ",
                scale);
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, bool causal,
                                    double scale, bool deterministic_backward) {
  check_arguments(q_in, k_in, v_in, scale);
  if (scale == 0.0) scale = 1.0 / std::sqrt(static_cast<double>(q_in.size(3)));
  const Tensor q = rows_contiguous(q_in), k = rows_contiguous(k_in), v = rows_contiguous(v_in);

  Tensor out = ops::empty_like(q);  // contiguous [batch, heads, q_len, head_dim]
  Tensor lse = Tensor::empty({q.size(0), q.size(1), q.size(2)}, kernels::attention_lse_dtype(q.dtype()), q.device());
  if (out.numel() > 0) {
    const kernels::AttentionArgs a = attention_kernel_args(q, k, v, causal, scale, {.out = out, .lse = lse});
    TESSERA_DEVICE_DISPATCH(q, kernels::attention_forward_cpu(a), kernels::attention_forward_cuda(a, stream_for(q)));
  }

  if (autograd::needs_grad({q_in, k_in, v_in})) {
    auto node = autograd::make_node<AttentionBackward>({q_in, k_in, v_in});
    node->q = autograd::SavedTensor(q, false);
    node->k = autograd::SavedTensor(k, false);
    node->v = autograd::SavedTensor(v, false);
    node->lse = lse;
    node->causal = causal;
    node->scale = scale;
    node->deterministic = deterministic_backward;
    autograd::record(out, node);
    node->out = autograd::SavedTensor(out, true);  // after record: out's grad_fn is node
  }
  return out;
}

kernels::AttentionArgs attention_kernel_args(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                             double scale, const AttentionOutputs& t) {
  const auto strides = [](const Tensor& x) {
    return x.defined() ? kernels::AttentionStrides{x.stride(0), x.stride(1), x.stride(2)} : kernels::AttentionStrides{};
  };
  const auto pointer = [](const Tensor& x) { return x.defined() ? x.data_ptr() : nullptr; };
  kernels::AttentionArgs a;
  a.dtype = q.dtype();
  a.batch = q.size(0);
  a.heads = q.size(1);
  a.q_len = q.size(2);
  a.head_dim = q.size(3);
  a.kv_heads = k.size(1);
  a.kv_len = k.size(2);
  a.causal = causal;
  a.scale = scale;
  a.q = q.data_ptr();
  a.k = k.data_ptr();
  a.v = v.data_ptr();
  a.q_strides = strides(q);
  a.k_strides = strides(k);
  a.v_strides = strides(v);
  a.out = pointer(t.out);
  a.out_strides = strides(t.out);
  a.lse = pointer(t.lse);
  a.dout = pointer(t.dout);
  a.dout_strides = strides(t.dout);
  a.dq = pointer(t.dq);
  a.dk = pointer(t.dk);
  a.dv = pointer(t.dv);
  a.dq_strides = strides(t.dq);
  a.dk_strides = strides(t.dk);
  a.dv_strides = strides(t.dv);
  return a;
}

}  // namespace tessera
