// GPT-MTP layers (gpt_mtp_layers.h). Shapes: x [B, T, dim]; attention works on views of the
// fused qkv projection ([B, T, heads, head_dim] slices, permuted to [B, heads, T, head_dim]
// without copies) and writes [B, heads, T, head_dim], which is permuted back and flattened.
#include "framework/models/gpt_mtp_layers.h"

#include "framework/ops/ops.h"

namespace tessera::models::layers {

Tensor cast_like(const Tensor& w, const Tensor& like) {
  if (!w.defined() || w.dtype() == like.dtype()) return w;
  return cast(w, like.dtype());
}

Projection::Projection(int64_t in_features, int64_t out_features, bool bias) {
  weight_ = register_parameter("weight", Tensor::zeros({out_features, in_features}));
  if (bias) bias_ = register_parameter("bias", Tensor::zeros({out_features}));
}

Tensor Projection::forward(const Tensor& x) const { return linear(x, cast_like(weight_, x), cast_like(bias_, x)); }

Norm::Norm(const std::string& kind, int64_t dim, double eps) : layer_norm_(kind == "layernorm"), eps_(eps) {
  weight_ = register_parameter("weight", Tensor::ones({dim}));
  if (layer_norm_) bias_ = register_parameter("bias", Tensor::zeros({dim}));
}

Tensor Norm::forward(const Tensor& x) const {
  if (layer_norm_) return layer_norm(x, cast_like(weight_, x), cast_like(bias_, x), eps_);
  return rms_norm(x, cast_like(weight_, x), eps_);
}

Attention::Attention(const GptMtpOptions& o)
    : heads_(o.n_heads), kv_heads_(o.kv_heads()), head_dim_(o.head_dim()) {
  qkv_ = register_module("qkv", std::make_shared<Projection>(o.dim, (heads_ + 2 * kv_heads_) * head_dim_, false));
  proj_ = register_module("proj", std::make_shared<Projection>(heads_ * head_dim_, o.dim, false));
}

Tensor Attention::forward(const Tensor& x, const AttentionContext& ctx) const {
  const int64_t batch = x.size(0), len = x.size(1);
  const std::vector<Tensor> parts =
      split(qkv_->forward(x), {heads_ * head_dim_, kv_heads_ * head_dim_, kv_heads_ * head_dim_}, 2);
  Tensor q = parts[0].reshape({batch, len, heads_, head_dim_});
  Tensor k = parts[1].reshape({batch, len, kv_heads_, head_dim_});
  Tensor v = parts[2].reshape({batch, len, kv_heads_, head_dim_});
  if (ctx.rope != nullptr) {
    const Tensor cos = ctx.rope->cos.slice(0, ctx.start, ctx.start + len);
    const Tensor sin = ctx.rope->sin.slice(0, ctx.start, ctx.start + len);
    q = rope(q, cos, sin);
    k = rope(k, cos, sin);
  }
  q = q.permute({0, 2, 1, 3});
  k = k.permute({0, 2, 1, 3});
  v = v.permute({0, 2, 1, 3});
  if (ctx.cache != nullptr) {
    LayerCache& c = *ctx.cache;
    TESSERA_ASSERT(ctx.start + len <= c.k.size(2), "KV cache of capacity ", c.k.size(2), " cannot hold positions up to ",
                   ctx.start + len);
    {
      NoGradGuard no_grad;
      copy_into(c.k.slice(2, ctx.start, ctx.start + len), k);
      copy_into(c.v.slice(2, ctx.start, ctx.start + len), v);
    }
    k = c.k.slice(2, 0, ctx.start + len);
    v = c.v.slice(2, 0, ctx.start + len);
  }
  const Tensor y = scaled_dot_product_attention(q, k, v, /*causal=*/true);
  return proj_->forward(y.permute({0, 2, 1, 3}).reshape({batch, len, heads_ * head_dim_}));
}

Mlp::Mlp(const GptMtpOptions& o) : swiglu_(o.mlp == "swiglu"), hidden_(o.mlp_width()) {
  fc_ = register_module("fc", std::make_shared<Projection>(o.dim, swiglu_ ? 2 * hidden_ : hidden_, false));
  proj_ = register_module("proj", std::make_shared<Projection>(hidden_, o.dim, false));
}

Tensor Mlp::forward(const Tensor& x) const {
  const Tensor u = fc_->forward(x);
  if (!swiglu_) return proj_->forward(gelu(u));
  const std::vector<Tensor> gate_up = split(u, hidden_, -1);
  return proj_->forward(silu(gate_up[0]) * gate_up[1]);
}

Block::Block(const GptMtpOptions& o) : dropout_(o.dropout) {
  norm1_ = register_module("norm1", std::make_shared<Norm>(o.norm, o.dim, o.norm_eps));
  attn_ = register_module("attn", std::make_shared<Attention>(o));
  norm2_ = register_module("norm2", std::make_shared<Norm>(o.norm, o.dim, o.norm_eps));
  mlp_ = register_module("mlp", std::make_shared<Mlp>(o));
}

Tensor Block::forward(const Tensor& x, const AttentionContext& ctx) const {
  const Tensor h = x + dropout(attn_->forward(norm1_->forward(x), ctx), dropout_, is_training());
  return h + dropout(mlp_->forward(norm2_->forward(h)), dropout_, is_training());
}

MtpModule::MtpModule(const GptMtpOptions& o) {
  norm_h_ = register_module("norm_h", std::make_shared<Norm>(o.norm, o.dim, o.norm_eps));
  norm_e_ = register_module("norm_e", std::make_shared<Norm>(o.norm, o.dim, o.norm_eps));
  proj_ = register_module("proj", std::make_shared<Projection>(2 * o.dim, o.dim, false));
  block_ = register_module("block", std::make_shared<Block>(o));
  norm_out_ = register_module("norm_out", std::make_shared<Norm>(o.norm, o.dim, o.norm_eps));
}

Tensor MtpModule::hidden(const Tensor& previous, const Tensor& embedded, const AttentionContext& ctx) const {
  const Tensor joined = cat({norm_h_->forward(previous), norm_e_->forward(embedded)}, -1);
  return block_->forward(proj_->forward(joined), ctx);
}

MedusaHead::MedusaHead(const GptMtpOptions& o, bool own_head) {
  fc_ = register_module("fc", std::make_shared<Projection>(o.dim, o.dim, true));
  if (own_head) head_ = register_module("head", std::make_shared<Projection>(o.dim, o.vocab_size, false));
}

Tensor MedusaHead::residual(const Tensor& z) const { return z + silu(fc_->forward(z)); }

}  // namespace tessera::models::layers
