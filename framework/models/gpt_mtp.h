// GPT-MTP: a decoder-only transformer with multi-token-prediction heads (DeepSeek-V3 MTP
// modules or Medusa heads), for training and as a drafter for speculative decoding.
//
// defines: tessera::models::GptMtpOptions, GptMtp, GptMtpOutput, GptMtpLosses, gpt_mtp_loss,
//          KvCache, mtp_kind_names
//
// The trunk: token embedding (+ learned positions, or rotary positions inside attention),
// n_layers pre-norm blocks  x += Attn(Norm(x)); x += Mlp(Norm(x))  with causal attention
// through tessera::scaled_dot_product_attention (grouped-query when n_kv_heads < n_heads), a
// final norm and the output head (tied to the token embedding or its own). Norm is RMSNorm or
// LayerNorm, the MLP GELU (4 * dim) or SwiGLU (mlp_hidden, default 8/3 * dim rounded up to 64).
//
// Multi-token prediction, depth k = 1..D, at every position i:
//  * "deepseek" (DeepSeek-V3): h_k = Block_k(W_k [Norm(h_{k-1}); Norm(Emb(t_{i+k}))]) with
//    h_0 the trunk's last hidden state (before the final norm), its own output norm, and the
//    shared embedding and output head; depth k predicts t_{i+k+1}. Each depth is a full
//    transformer block with causal attention, so it needs the tokens t_{i+k} (teacher forcing
//    in training, drafts when decoding) and its own KV cache when decoding.
//  * "medusa": z = FinalNorm(h_0); logits_k = Head_k(z + SiLU(W_k z + b_k)) with the shared
//    head or (mtp_shared_head = false) one head per depth; predicts t_{i+k+1} from position i.
// Loss: CE_main + (mtp_lambda / D) * sum_k CE_k (gpt_mtp_loss).
//
// Parameter names follow what PyTorch would give the same modules: tok_emb.weight,
// pos_emb.weight, blocks.<i>.{norm1,attn.qkv,attn.proj,norm2,mlp.fc,mlp.proj}.weight,
// norm_f.weight, lm_head.weight (untied only), mtp.<k-1>.{norm_h,norm_e,proj,block.*,norm_out},
// medusa.<k-1>.{fc.weight,fc.bias,head.weight}. LayerNorm adds ".bias" to each norm. The fused
// qkv weight holds the rows of q (n_heads * head_dim), then k, then v (n_kv_heads * head_dim
// each); the SwiGLU fc weight holds the gate rows, then the up rows. Linear layers have no bias.
//
// Precision: parameters stay f32 (the optimizer's master weights); `set_compute_dtype(bf16)`
// makes the forward cast the embedding output and each weight at its use (a differentiable
// cast, so gradients arrive in f32 at the masters). Activations, logits and the KV cache are in
// the compute dtype; norms, softmax, attention and losses accumulate in f32 inside the ops.
//
// Initialisation (GPT-2): weights N(0, 0.02), residual output projections N(0, 0.02 /
// sqrt(2 * blocks)), norms 1/0, the Medusa fc 0 (each head starts as the plain output head).
// Errors in options name the config key (`model.n_heads`=7 does not divide `model.dim`=512).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/core/rng.h"
#include "framework/nn/module.h"
#include "framework/ops/rope.h"

namespace tessera::models {

struct GptMtpOptions {
  int64_t vocab_size = 0;               // model.vocab_size (required)
  int64_t context = 256;                // model.context: longest sequence (positions 0..context-1)
  int64_t n_layers = 4;                 // model.n_layers
  int64_t dim = 256;                    // model.dim
  int64_t n_heads = 4;                  // model.n_heads
  int64_t n_kv_heads = 0;               // model.n_kv_heads: 0 = n_heads; must divide n_heads
  std::string norm = "rmsnorm";         // model.norm: rmsnorm | layernorm
  double norm_eps = 1e-5;               // model.norm_eps
  std::string positions = "rope";       // model.positions: rope | learned
  double rope_theta = 10000.0;          // model.rope_theta
  std::string mlp = "gelu";             // model.mlp: gelu | swiglu
  int64_t mlp_hidden = 0;               // model.mlp_hidden: 0 = 4 * dim (gelu), 8/3 * dim up to 64 (swiglu)
  bool tie_embeddings = true;           // model.tie_embeddings
  double dropout = 0.0;                 // model.dropout: embedding and residual branches
  std::string mtp_kind = "deepseek";    // model.mtp_kind: deepseek | medusa | none
  int64_t mtp_depth = 1;                // model.mtp_depth: D (0 with mtp_kind none)
  double mtp_lambda = 0.3;              // model.mtp_lambda
  bool mtp_shared_head = true;          // model.mtp_shared_head: medusa heads share the output head

  int64_t kv_heads() const { return n_kv_heads > 0 ? n_kv_heads : n_heads; }
  int64_t head_dim() const { return dim / n_heads; }
  int64_t mlp_width() const;  // the resolved hidden width of the MLP
  int64_t depth() const { return mtp_kind == "none" ? 0 : mtp_depth; }
  // Throws naming the config key of the first bad value.
  void validate() const;
  nlohmann::json to_json() const;
  // Every field must be present; errors name `what` (e.g. the checkpoint's state.json).
  static GptMtpOptions from_json(const nlohmann::json& json, const std::string& what);
};

const std::vector<std::string>& mtp_kind_names();  // deepseek, medusa, none

// Keys and values of one attention layer: [batch, kv_heads, capacity, head_dim] each.
struct LayerCache {
  Tensor k, v;
};

// A KV cache for a stack of blocks; positions [0, length) are filled. truncate() forgets the
// tail (rejected speculative tokens): the next forward overwrites it.
struct KvCache {
  std::vector<LayerCache> layers;
  int64_t length = 0;
  int64_t capacity = 0;
  void truncate(int64_t new_length);
};

struct GptMtpOutput {
  Tensor logits;                   // [B, T, vocab]: position i predicts t_{i+1}
  std::vector<Tensor> mtp_logits;  // D x [B, T, vocab]: depth k at position i predicts t_{i+k+1}
};

struct GptMtpLosses {
  Tensor total;             // CE_main + lambda / D * sum_k CE_k (differentiable, f32 0-dim)
  Tensor main;              // CE_main
  std::vector<Tensor> mtp;  // CE_k, k = 1..D
};

// Losses of `output` on loader windows [B, T + 1 + D] (framework/data/lm_loader.h): the main
// targets are window[:, 1 : T+1], depth k's are window[:, k+1 : k+1+T].
GptMtpLosses gpt_mtp_loss(const GptMtpOutput& output, const Tensor& window, double mtp_lambda);

namespace layers {
class Block;
class MtpModule;
class MedusaHead;
class Norm;
class Projection;
}  // namespace layers

class GptMtp : public nn::Module {
 public:
  // Parameters are drawn from `gen` (the default generator when null), f32 on the CPU.
  explicit GptMtp(const GptMtpOptions& options, Generator* gen = nullptr);
  ~GptMtp() override;

  const GptMtpOptions& options() const { return options_; }
  int64_t depth() const { return options_.depth(); }
  // The dtype the forward computes in (f32 by default; bf16 on CUDA for mixed precision).
  void set_compute_dtype(DType dtype);
  DType compute_dtype() const { return compute_dtype_; }

  // Training and evaluation: windows [B, T + 1 + D] of token ids (i64). Main logits for the
  // inputs window[:, :T]; DeepSeek depth k reads window[:, k : k+T] as its t_{i+k}.
  GptMtpOutput forward_window(const Tensor& window);

  // ---- pieces for decoding (all take absolute positions start .. start + T - 1) ----
  // The trunk's last hidden state h_0 [B, T, dim] (before the final norm) for tokens [B, T].
  // With a cache, keys and values are appended at cache->length (== start) and attention sees
  // the whole prefix; the caller advances cache->length by T afterwards.
  Tensor trunk(const Tensor& tokens, int64_t start, KvCache* cache = nullptr);
  // Main logits [B, T, vocab] from h_0.
  Tensor head(const Tensor& hidden);
  // DeepSeek depth k (1-based): h_k from h_{k-1} [B, T, dim] and the tokens t_{i+k} [B, T].
  Tensor mtp_hidden(int64_t k, const Tensor& previous, const Tensor& shifted_tokens, int64_t start,
                    KvCache* cache = nullptr);
  // Depth-k logits: DeepSeek from h_k (mtp_hidden), Medusa from the trunk's h_0.
  Tensor mtp_head(int64_t k, const Tensor& hidden);

  // A cache for the trunk (n_layers layers) or for DeepSeek depth k (one layer).
  KvCache make_cache(int64_t batch, int64_t capacity, Device device) const;
  KvCache make_mtp_cache(int64_t k, int64_t batch, int64_t capacity, Device device) const;

 private:
  Tensor embed(const Tensor& tokens);           // token embedding in the compute dtype
  Tensor output_head(const Tensor& normed);     // the shared head (tied or lm_head)
  const RopeTables* rope_for(Device device);    // null for learned positions
  void init_weights(Generator* gen);

  GptMtpOptions options_;
  DType compute_dtype_ = DType::f32;
  Tensor tok_emb_, pos_emb_;  // the "weight" parameters of tok_emb and pos_emb (pos_emb: learned only)
  std::vector<std::shared_ptr<layers::Block>> blocks_;
  std::shared_ptr<layers::Norm> norm_f_;
  std::shared_ptr<layers::Projection> lm_head_;  // null when tied
  std::vector<std::shared_ptr<layers::MtpModule>> mtp_;
  std::vector<std::shared_ptr<layers::MedusaHead>> medusa_;
  RopeTables rope_;  // on the device of the last forward
};

}  // namespace tessera::models
