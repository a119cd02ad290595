// The layers of GPT-MTP (framework/models/gpt_mtp.h): projection, norm, attention, MLP, block,
// DeepSeek MTP module and Medusa head. Internal to the model; the names of their parameters are
// the model's state-dict names.
//
// defines: tessera::models::layers::{cast_like, Projection, Norm, AttentionContext, Attention,
//          Mlp, Block, MtpModule, MedusaHead, ModuleList}
//
// Every layer computes in the dtype of its input: weights are cast to it at their use
// (cast_like, a differentiable cast that is a no-op when the dtypes agree), so f32 master
// parameters serve a bf16 forward and receive f32 gradients.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "framework/models/gpt_mtp.h"
#include "framework/nn/module.h"

namespace tessera::models::layers {

// `w` in `like`'s dtype (differentiable); an undefined `w` stays undefined.
Tensor cast_like(const Tensor& w, const Tensor& like);

// Children "0", "1", ... like torch.nn.ModuleList.
template <typename M>
class ModuleList : public nn::Module {
 public:
  std::shared_ptr<M> add(std::shared_ptr<M> module) {
    modules_.push_back(register_module(std::to_string(modules_.size()), std::move(module)));
    return modules_.back();
  }
  const std::vector<std::shared_ptr<M>>& items() const { return modules_; }

 private:
  std::vector<std::shared_ptr<M>> modules_;
};

// y = x W^T (+ b); "weight" [out, in], "bias" [out].
class Projection : public nn::Module {
 public:
  Projection(int64_t in_features, int64_t out_features, bool bias);
  Tensor forward(const Tensor& x) const;
  const Tensor& weight() const { return weight_; }

 private:
  Tensor weight_, bias_;
};

// RMSNorm ("weight") or LayerNorm ("weight", "bias") over the last dim.
class Norm : public nn::Module {
 public:
  Norm(const std::string& kind, int64_t dim, double eps);
  Tensor forward(const Tensor& x) const;

 private:
  bool layer_norm_;
  double eps_;
  Tensor weight_, bias_;
};

// Where a block's attention is in the sequence: absolute position of the first row, the rope
// tables (null: learned positions) and the layer's KV cache (null: no cache). With a cache the
// new keys/values are written at rows [start, start + T) and attention reads rows [0, start + T).
struct AttentionContext {
  int64_t start = 0;
  const RopeTables* rope = nullptr;
  LayerCache* cache = nullptr;
};

class Attention : public nn::Module {
 public:
  explicit Attention(const GptMtpOptions& o);
  Tensor forward(const Tensor& x, const AttentionContext& ctx) const;

 private:
  int64_t heads_, kv_heads_, head_dim_;
  std::shared_ptr<Projection> qkv_, proj_;
};

class Mlp : public nn::Module {
 public:
  explicit Mlp(const GptMtpOptions& o);
  Tensor forward(const Tensor& x) const;

 private:
  bool swiglu_;
  int64_t hidden_;
  std::shared_ptr<Projection> fc_, proj_;
};

// Pre-norm transformer block: x += Drop(Attn(norm1(x))); x += Drop(Mlp(norm2(x))).
class Block : public nn::Module {
 public:
  explicit Block(const GptMtpOptions& o);
  Tensor forward(const Tensor& x, const AttentionContext& ctx) const;

 private:
  double dropout_;
  std::shared_ptr<Norm> norm1_, norm2_;
  std::shared_ptr<Attention> attn_;
  std::shared_ptr<Mlp> mlp_;
};

// DeepSeek-V3 MTP module: h_k = block(proj([norm_h(h_{k-1}); norm_e(e)])), logits via norm_out.
class MtpModule : public nn::Module {
 public:
  explicit MtpModule(const GptMtpOptions& o);
  Tensor hidden(const Tensor& previous, const Tensor& embedded, const AttentionContext& ctx) const;
  Tensor output_norm(const Tensor& h) const { return norm_out_->forward(h); }

 private:
  std::shared_ptr<Norm> norm_h_, norm_e_, norm_out_;
  std::shared_ptr<Projection> proj_;
  std::shared_ptr<Block> block_;
};

// Medusa head: z + SiLU(fc(z)), then its own output projection "head" (or the shared one).
class MedusaHead : public nn::Module {
 public:
  MedusaHead(const GptMtpOptions& o, bool own_head);
  Tensor residual(const Tensor& z) const;
  const Projection* own_head() const { return head_.get(); }

 private:
  std::shared_ptr<Projection> fc_, head_;
};

}  // namespace tessera::models::layers
