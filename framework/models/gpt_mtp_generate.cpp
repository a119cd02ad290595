// Generation with a GPT-MTP model (gpt_mtp_generate.h): prefill, plain KV-cached decoding and
// greedy speculative decoding. Token choices happen on the host from one row of logits.
#include "framework/models/gpt_mtp_generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "framework/ops/ops.h"

namespace tessera::models {
namespace {

// Restores the model's train/eval mode when generation ends.
class EvalMode {
 public:
  explicit EvalMode(GptMtp& model) : model_(model), was_training_(model.is_training()) { model_.eval(); }
  ~EvalMode() { model_.train(was_training_); }
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;

 private:
  GptMtp& model_;
  bool was_training_;
};

Tensor token_tensor(const std::vector<int64_t>& ids, Device device) {
  return Tensor::from_vector(ids, {1, static_cast<int64_t>(ids.size())}).to(device);
}

// Logits [1, T, V] -> T rows of V floats on the host.
std::vector<std::vector<float>> host_rows(const Tensor& logits) {
  const int64_t rows = logits.size(1), vocab = logits.size(2);
  const std::vector<float> flat = logits.to(Device::cpu()).to_vector<float>();
  std::vector<std::vector<float>> out(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) out[r].assign(flat.begin() + r * vocab, flat.begin() + (r + 1) * vocab);
  return out;
}

int64_t argmax(const std::vector<float>& row) {
  return static_cast<int64_t>(std::max_element(row.begin(), row.end()) - row.begin());  // first maximum
}

// Greedy, or temperature + nucleus (top-p) sampling with a seeded Philox generator.
class TokenPicker {
 public:
  explicit TokenPicker(const GenerateOptions& o) : temperature_(o.temperature), top_p_(o.top_p), gen_(o.seed) {}

  int64_t pick(const std::vector<float>& row) {
    if (temperature_ == 0.0) return argmax(row);
    const double top = *std::max_element(row.begin(), row.end());
    std::vector<double> p(row.size());
    for (size_t i = 0; i < row.size(); ++i) p[i] = std::exp((static_cast<double>(row[i]) - top) / temperature_);
    std::vector<int64_t> order(row.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
    const double total = std::accumulate(p.begin(), p.end(), 0.0);
    // Keep the most probable tokens until their share reaches top_p (at least one).
    double kept = 0.0;
    size_t count = 0;
    while (count < order.size() && (count == 0 || kept < top_p_ * total)) kept += p[order[count++]];
    const double u = rand({}, 0.0, 1.0, DType::f64, Device::cpu(), &gen_).item() * kept;
    double running = 0.0;
    for (size_t i = 0; i < count; ++i) {
      running += p[order[i]];
      if (u < running) return order[i];
    }
    return order[count - 1];
  }

 private:
  double temperature_, top_p_;
  Generator gen_;
};

void check_options(const GptMtp& model, const std::vector<int64_t>& prompt, const GenerateOptions& o) {
  const GptMtpOptions& m = model.options();
  TESSERA_CHECK(!prompt.empty(), "generate: the prompt is empty (it must hold at least one token)");
  TESSERA_CHECK(static_cast<int64_t>(prompt.size()) <= m.context, "generate: the prompt has ", prompt.size(),
                " tokens, more than the model's context of ", m.context);
  for (size_t i = 0; i < prompt.size(); ++i)
    TESSERA_CHECK(prompt[i] >= 0 && prompt[i] < m.vocab_size, "generate: prompt token ", prompt[i], " at position ",
                  i, " is outside the vocabulary [0, ", m.vocab_size, ")");
  TESSERA_CHECK(o.max_tokens >= 0, "generate: max_tokens must not be negative, got ", o.max_tokens);
  TESSERA_CHECK(o.temperature >= 0.0 && std::isfinite(o.temperature),
                "generate: temperature must be >= 0 (0: greedy), got ", o.temperature);
  TESSERA_CHECK(o.top_p > 0.0 && o.top_p <= 1.0, "generate: top_p must be in (0, 1], got ", o.top_p);
  if (o.speculative) {
    TESSERA_CHECK(o.temperature == 0.0, "generate: speculative decoding verifies greedily; use temperature 0 (got ",
                  o.temperature, ")");
    TESSERA_CHECK(model.depth() > 0, "generate: speculative decoding needs MTP heads, but the model has ",
                  "model.mtp_kind = \"", m.mtp_kind, "\"");
  }
}

// Collects emitted tokens and decides when to stop.
struct Emitter {
  const GenerateOptions& options;
  GenerateResult& result;
  // Adds `token`; true when generation must stop after it.
  bool emit(int64_t token) {
    result.tokens.push_back(token);
    if (token == options.stop_token) {
      result.stop_reason = "stop_token";
      return true;
    }
    if (static_cast<int64_t>(result.tokens.size()) >= options.max_tokens) {
      result.stop_reason = "max_tokens";
      return true;
    }
    return false;
  }
};

void decode_plain(GptMtp& model, KvCache& cache, int64_t next, TokenPicker& picker, Emitter& out, Device device) {
  const int64_t context = model.options().context;
  while (!out.emit(next)) {
    const int64_t m = cache.length;
    if (m >= context) {
      out.result.stop_reason = "context";
      return;
    }
    const Tensor h = model.trunk(token_tensor({next}, device), m, &cache);
    cache.length = m + 1;
    ++out.result.trunk_steps;
    next = picker.pick(host_rows(model.head(h))[0]);
  }
}

// Greedy speculative decoding (see gpt_mtp_generate.h). `stored` holds the trunk's hidden states
// of positions [committed, m); `known` the tokens t_0 .. t_{m-1}; `next` is t_m.
void decode_speculative(GptMtp& model, KvCache& cache, Tensor stored, std::vector<int64_t> known, int64_t next,
                        Emitter& out, Device device) {
  const int64_t context = model.options().context;
  const int64_t depth = model.depth();
  const bool deepseek = model.options().mtp_kind == "deepseek";
  std::vector<KvCache> mtp_caches;
  if (deepseek)
    for (int64_t k = 1; k <= depth; ++k) mtp_caches.push_back(model.make_mtp_cache(k, 1, context, device));
  int64_t committed = 0;
  out.result.accepted_at_depth.assign(static_cast<size_t>(depth), 0);
  if (out.emit(next)) return;
  while (true) {
    const int64_t m = cache.length;
    if (m >= context) {
      out.result.stop_reason = "context";
      return;
    }
    const int64_t drafts = std::min(depth, context - m - 1);  // the chain fills positions m .. m + drafts
    std::vector<int64_t> chain = {next};
    if (drafts > 0 && !deepseek) {
      const Tensor last = stored.slice(1, stored.size(1) - 1, stored.size(1));
      for (int64_t k = 1; k <= drafts; ++k) chain.push_back(argmax(host_rows(model.mtp_head(k, last))[0]));
    } else if (drafts > 0) {
      Tensor previous = stored;
      for (int64_t k = 1; k <= drafts; ++k) {
        // Depth k at positions j in [committed, m) reads t_{j+k}: known tokens, then the chain.
        std::vector<int64_t> shifted;
        for (int64_t j = committed; j < m; ++j) shifted.push_back(j + k < m ? known[j + k] : chain[j + k - m]);
        const Tensor h = model.mtp_hidden(k, previous, token_tensor(shifted, device), committed, &mtp_caches[k - 1]);
        mtp_caches[k - 1].length = m;
        chain.push_back(argmax(host_rows(model.mtp_head(k, h.slice(1, m - committed - 1, m - committed)))[0]));
        previous = h;
      }
    }

    // Verify: the trunk's greedy choice after each chain token.
    const int64_t length = static_cast<int64_t>(chain.size());
    const Tensor h = model.trunk(token_tensor(chain, device), m, &cache);
    cache.length = m + length;
    ++out.result.trunk_steps;
    std::vector<int64_t> choice;
    for (const auto& row : host_rows(model.head(h))) choice.push_back(argmax(row));
    int64_t accepted = 0;
    while (accepted < drafts && chain[accepted + 1] == choice[accepted]) ++accepted;
    out.result.drafted += drafts;
    out.result.accepted += accepted;
    for (int64_t i = 0; i < accepted; ++i) ++out.result.accepted_at_depth[i];

    // Keep positions m .. m + accepted (their tokens are final); drop the rest.
    cache.truncate(m + accepted + 1);
    stored = cat({stored, h.slice(1, 0, accepted + 1)}, 1);
    for (int64_t i = 0; i <= accepted; ++i) known.push_back(chain[i]);
    if (deepseek) {
      // Depth k at position j read t_{j+k}; it is final for every depth when j + depth <= m + accepted.
      const int64_t final_positions =
          drafts == depth ? std::max(committed, std::min(m, m + accepted - depth + 1)) : committed;
      for (KvCache& c : mtp_caches) c.truncate(std::min(c.length, final_positions));
      stored = stored.slice(1, final_positions - committed, stored.size(1));
      committed = final_positions;
    } else {
      stored = stored.slice(1, stored.size(1) - 1, stored.size(1));  // Medusa drafts from the last position only
    }
    next = choice[accepted];
    for (int64_t i = 1; i <= accepted; ++i)
      if (out.emit(chain[i])) return;
    if (out.emit(next)) return;
  }
}

}  // namespace

GenerateResult generate(GptMtp& model, const std::vector<int64_t>& prompt, const GenerateOptions& options) {
  check_options(model, prompt, options);
  GenerateResult result;
  if (options.max_tokens == 0) {
    result.stop_reason = "max_tokens";
    return result;
  }
  NoGradGuard no_grad;
  EvalMode eval(model);
  const Device device = model.parameters().front().device();
  const int64_t n = static_cast<int64_t>(prompt.size());
  KvCache cache = model.make_cache(1, model.options().context, device);
  const Tensor h = model.trunk(token_tensor(prompt, device), 0, &cache);
  cache.length = n;
  TokenPicker picker(options);
  const int64_t next = picker.pick(host_rows(model.head(h.slice(1, n - 1, n)))[0]);
  Emitter out{options, result};
  if (options.speculative) {
    decode_speculative(model, cache, h, prompt, next, out, device);
  } else {
    decode_plain(model, cache, next, picker, out, device);
  }
  return result;
}

}  // namespace tessera::models
