// GPT-MTP model (gpt_mtp.h): construction, initialisation, the training forward over loader
// windows, the decoding pieces (trunk, heads, MTP depths with KV caches) and the loss.
#include "framework/models/gpt_mtp.h"

#include <cmath>

#include "framework/models/gpt_mtp_layers.h"
#include "framework/nn/embedding.h"
#include "framework/nn/init.h"
#include "framework/ops/ops.h"

namespace tessera::models {

using layers::AttentionContext;

void KvCache::truncate(int64_t new_length) {
  TESSERA_CHECK(new_length >= 0 && new_length <= length, "KvCache::truncate: length ", new_length,
                " is outside [0, ", length, "]");
  length = new_length;
}

GptMtp::GptMtp(const GptMtpOptions& options, Generator* gen) : options_(options) {
  options_.validate();
  const GptMtpOptions& o = options_;
  tok_emb_ = register_module("tok_emb", std::make_shared<nn::Embedding>(o.vocab_size, o.dim, gen))->weight();
  if (o.positions == "learned")
    pos_emb_ = register_module("pos_emb", std::make_shared<nn::Embedding>(o.context, o.dim, gen))->weight();
  auto blocks = register_module("blocks", std::make_shared<layers::ModuleList<layers::Block>>());
  for (int64_t i = 0; i < o.n_layers; ++i) blocks_.push_back(blocks->add(std::make_shared<layers::Block>(o)));
  norm_f_ = register_module("norm_f", std::make_shared<layers::Norm>(o.norm, o.dim, o.norm_eps));
  if (!o.tie_embeddings)
    lm_head_ = register_module("lm_head", std::make_shared<layers::Projection>(o.dim, o.vocab_size, false));
  if (o.mtp_kind == "deepseek") {
    auto list = register_module("mtp", std::make_shared<layers::ModuleList<layers::MtpModule>>());
    for (int64_t k = 0; k < o.mtp_depth; ++k) mtp_.push_back(list->add(std::make_shared<layers::MtpModule>(o)));
  } else if (o.mtp_kind == "medusa") {
    auto list = register_module("medusa", std::make_shared<layers::ModuleList<layers::MedusaHead>>());
    for (int64_t k = 0; k < o.mtp_depth; ++k)
      medusa_.push_back(list->add(std::make_shared<layers::MedusaHead>(o, !o.mtp_shared_head)));
  }
  init_weights(gen);
}

GptMtp::~GptMtp() = default;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_norm_parameter(const std::string& name) {
  const size_t dot = name.rfind('.');
  const size_t previous = name.rfind('.', dot - 1);
  const std::string module = name.substr(previous == std::string::npos ? 0 : previous + 1, dot - previous - 1);
  return module.rfind("norm", 0) == 0;
}

}  // namespace

void GptMtp::init_weights(Generator* gen) {
  // Blocks on the residual stream: the trunk's and the DeepSeek modules'.
  const double residual_blocks = static_cast<double>(options_.n_layers + static_cast<int64_t>(mtp_.size()));
  const double residual_std = 0.02 / std::sqrt(2.0 * residual_blocks);
  for (const auto& [name, p] : named_parameters()) {
    if (is_norm_parameter(name)) {
      nn::init::constant_(p, ends_with(name, ".bias") ? 0.0 : 1.0);
    } else if (name.rfind("medusa.", 0) == 0 && name.find(".fc.") != std::string::npos) {
      nn::init::zeros_(p);
    } else if (ends_with(name, "attn.proj.weight") || ends_with(name, "mlp.proj.weight")) {
      nn::init::normal_(p, 0.0, residual_std, gen);
    } else {
      nn::init::normal_(p, 0.0, 0.02, gen);
    }
  }
}

void GptMtp::set_compute_dtype(DType dtype) {
  TESSERA_CHECK(is_floating_point(dtype), "GptMtp: compute dtype must be floating point, got ", dtype_name(dtype));
  compute_dtype_ = dtype;
}

const RopeTables* GptMtp::rope_for(Device device) {
  if (options_.positions != "rope") return nullptr;
  if (!rope_.cos.defined() || rope_.cos.device() != device)
    rope_ = rope_tables(options_.context, options_.head_dim(), options_.rope_theta, device);
  return &rope_;
}

Tensor GptMtp::embed(const Tensor& tokens) {
  const Tensor e = embedding(tok_emb_, tokens);
  return e.dtype() == compute_dtype_ ? e : cast(e, compute_dtype_);
}

Tensor GptMtp::output_head(const Tensor& normed) {
  if (lm_head_) return lm_head_->forward(normed);
  return linear(normed, layers::cast_like(tok_emb_, normed));
}

Tensor GptMtp::trunk(const Tensor& tokens, int64_t start, KvCache* cache) {
  TESSERA_CHECK(tokens.defined() && tokens.dim() == 2, "GptMtp: expected tokens [batch, seq], got ",
                tokens.defined() ? shape_str(tokens.shape()) : std::string("(undefined)"));
  const int64_t len = tokens.size(1);
  TESSERA_CHECK(start >= 0 && start + len <= options_.context, "GptMtp: positions ", start, "..", start + len - 1,
                " do not fit the model's context of ", options_.context, " (model.context)");
  TESSERA_CHECK(cache == nullptr || (cache->length == start && static_cast<int64_t>(cache->layers.size()) ==
                                                                   options_.n_layers),
                "GptMtp: the KV cache holds ", cache ? cache->length : 0, " positions but the tokens start at ", start);
  Tensor x = embed(tokens);
  if (pos_emb_.defined()) x = x + layers::cast_like(pos_emb_.slice(0, start, start + len), x);
  x = dropout(x, options_.dropout, is_training());
  AttentionContext ctx{start, rope_for(tokens.device()), nullptr};
  for (size_t i = 0; i < blocks_.size(); ++i) {
    ctx.cache = cache ? &cache->layers[i] : nullptr;
    x = blocks_[i]->forward(x, ctx);
  }
  return x;
}

Tensor GptMtp::head(const Tensor& hidden) { return output_head(norm_f_->forward(hidden)); }

Tensor GptMtp::mtp_hidden(int64_t k, const Tensor& previous, const Tensor& shifted_tokens, int64_t start,
                          KvCache* cache) {
  TESSERA_CHECK(options_.mtp_kind == "deepseek" && k >= 1 && k <= depth(), "GptMtp::mtp_hidden: depth ", k,
                " does not exist (model.mtp_kind = \"", options_.mtp_kind, "\", model.mtp_depth = ", depth(), ")");
  TESSERA_CHECK(shifted_tokens.dim() == 2 && previous.dim() == 3 && shifted_tokens.size(0) == previous.size(0) &&
                    shifted_tokens.size(1) == previous.size(1),
                "GptMtp::mtp_hidden: tokens ", shape_str(shifted_tokens.shape()), " do not match hidden states ",
                shape_str(previous.shape()));
  const int64_t len = shifted_tokens.size(1);
  TESSERA_CHECK(start >= 0 && start + len <= options_.context, "GptMtp: positions ", start, "..", start + len - 1,
                " do not fit the model's context of ", options_.context, " (model.context)");
  TESSERA_CHECK(cache == nullptr || (cache->length == start && cache->layers.size() == 1),
                "GptMtp::mtp_hidden: the KV cache holds ", cache ? cache->length : 0,
                " positions but the tokens start at ", start);
  const AttentionContext ctx{start, rope_for(shifted_tokens.device()), cache ? &cache->layers[0] : nullptr};
  return mtp_[k - 1]->hidden(previous, embed(shifted_tokens), ctx);
}

Tensor GptMtp::mtp_head(int64_t k, const Tensor& hidden) {
  TESSERA_CHECK(k >= 1 && k <= depth(), "GptMtp::mtp_head: depth ", k, " does not exist (model.mtp_depth = ", depth(),
                ")");
  if (options_.mtp_kind == "deepseek") return output_head(mtp_[k - 1]->output_norm(hidden));
  const layers::MedusaHead& m = *medusa_[k - 1];
  const Tensor r = m.residual(norm_f_->forward(hidden));
  return m.own_head() ? m.own_head()->forward(r) : output_head(r);
}

GptMtpOutput GptMtp::forward_window(const Tensor& window) {
  const int64_t d = depth();
  TESSERA_CHECK(window.defined() && window.dim() == 2 && window.size(1) >= d + 2,
                "GptMtp::forward_window: expected token windows [batch, T + 1 + ", d, "] with T >= 1, got ",
                window.defined() ? shape_str(window.shape()) : std::string("(undefined)"));
  const int64_t len = window.size(1) - 1 - d;
  GptMtpOutput out;
  const Tensor h0 = trunk(window.slice(1, 0, len), 0);
  if (options_.mtp_kind == "medusa") {
    const Tensor z = norm_f_->forward(h0);
    out.logits = output_head(z);
    for (const auto& m : medusa_) {
      const Tensor r = m->residual(z);
      out.mtp_logits.push_back(m->own_head() ? m->own_head()->forward(r) : output_head(r));
    }
    return out;
  }
  out.logits = head(h0);
  Tensor previous = h0;
  for (int64_t k = 1; k <= static_cast<int64_t>(mtp_.size()); ++k) {
    previous = mtp_hidden(k, previous, window.slice(1, k, k + len), 0);
    out.mtp_logits.push_back(mtp_head(k, previous));
  }
  return out;
}

KvCache GptMtp::make_cache(int64_t batch, int64_t capacity, Device device) const {
  TESSERA_CHECK(capacity > 0 && capacity <= options_.context, "GptMtp::make_cache: capacity ", capacity,
                " must be in [1, model.context = ", options_.context, "]");
  KvCache cache;
  cache.capacity = capacity;
  const Shape shape = {batch, options_.kv_heads(), capacity, options_.head_dim()};
  for (int64_t i = 0; i < options_.n_layers; ++i)
    cache.layers.push_back({Tensor::zeros(shape, compute_dtype_, device), Tensor::zeros(shape, compute_dtype_, device)});
  return cache;
}

KvCache GptMtp::make_mtp_cache(int64_t k, int64_t batch, int64_t capacity, Device device) const {
  TESSERA_CHECK(options_.mtp_kind == "deepseek" && k >= 1 && k <= depth(), "GptMtp::make_mtp_cache: depth ", k,
                " has no attention (model.mtp_kind = \"", options_.mtp_kind, "\")");
  KvCache cache;
  cache.capacity = capacity;
  const Shape shape = {batch, options_.kv_heads(), capacity, options_.head_dim()};
  cache.layers.push_back({Tensor::zeros(shape, compute_dtype_, device), Tensor::zeros(shape, compute_dtype_, device)});
  return cache;
}

namespace {

// Mean cross-entropy as an f32 scalar. Low-precision logits go through per-token losses summed
// in f32, so the logged value does not carry a bf16 rounding of the mean.
Tensor mean_cross_entropy(const Tensor& logits, const Tensor& targets) {
  if (logits.dtype() == DType::f32) return cross_entropy(logits, targets);
  return cast(cross_entropy(logits, targets, -100, 0.0, Reduction::none), DType::f32).mean();
}

}  // namespace

GptMtpLosses gpt_mtp_loss(const GptMtpOutput& output, const Tensor& window, double mtp_lambda) {
  TESSERA_CHECK(output.logits.defined() && output.logits.dim() == 3, "gpt_mtp_loss: expected logits [B, T, vocab]");
  const int64_t len = output.logits.size(1);
  const int64_t d = static_cast<int64_t>(output.mtp_logits.size());
  TESSERA_CHECK(window.dim() == 2 && window.size(0) == output.logits.size(0) && window.size(1) >= len + 1 + d,
                "gpt_mtp_loss: windows ", shape_str(window.shape()), " are too short for T = ", len, " and ", d,
                " MTP depths (need [", output.logits.size(0), ", ", len + 1 + d, "])");
  GptMtpLosses losses;
  losses.main = mean_cross_entropy(output.logits, window.slice(1, 1, 1 + len));
  losses.total = losses.main;
  if (d == 0) return losses;
  Tensor mtp_sum;
  for (int64_t k = 1; k <= d; ++k) {
    losses.mtp.push_back(mean_cross_entropy(output.mtp_logits[k - 1], window.slice(1, k + 1, k + 1 + len)));
    mtp_sum = mtp_sum.defined() ? mtp_sum + losses.mtp.back() : losses.mtp.back();
  }
  losses.total = losses.main + mtp_sum * (mtp_lambda / static_cast<double>(d));
  return losses;
}

}  // namespace tessera::models
