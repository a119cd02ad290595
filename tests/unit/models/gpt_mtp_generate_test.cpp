// GPT-MTP decoding (framework/models/gpt_mtp_generate.h): the KV cache gives the logits of full
// recomputation, greedy generation equals argmax over recomputed sequences, the DeepSeek depths'
// caches equal their full recomputation, speculative decoding reproduces greedy decoding token
// for token (random models, and trained ones whose drafts are mostly accepted), and sampling
// is seeded.
#include <gtest/gtest.h>

#include <numeric>

#include "framework/core/error.h"
#include "framework/models/gpt_mtp.h"
#include "framework/models/gpt_mtp_generate.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"

namespace tessera::models {
namespace {

GptMtpOptions small_options(const std::string& kind, int64_t depth, const std::string& positions = "rope") {
  GptMtpOptions o;
  o.vocab_size = 13;
  o.context = 40;
  o.n_layers = 2;
  o.dim = 16;
  o.n_heads = 4;
  o.n_kv_heads = 2;
  o.positions = positions;
  o.mtp_kind = kind;
  o.mtp_depth = depth;
  return o;
}

// Weights large enough that logits are far apart (no argmax near-ties between code paths).
void randomize(GptMtp& model, uint64_t seed) {
  Generator gen(seed);
  NoGradGuard no_grad;
  for (const auto& [name, p] : model.named_parameters())
    copy_into(p, randn(p.shape(), name.find("norm") != std::string::npos ? 1.0 : 0.0, 0.4, DType::f32, Device::cpu(),
                       &gen));
}

Tensor ids(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {1, static_cast<int64_t>(v.size())}); }

std::vector<float> last_row(const Tensor& logits) {
  const int64_t n = logits.size(1);
  return logits.slice(1, n - 1, n).contiguous().to_vector<float>();
}

int64_t argmax_of(const std::vector<float>& row) {
  return std::max_element(row.begin(), row.end()) - row.begin();
}

TEST(GptMtpGenerateTest, CachedStepsGiveTheLogitsOfFullRecomputation) {
  for (const std::string positions : {"rope", "learned"}) {
    GptMtp model(small_options("none", 0, positions));
    randomize(model, 1);
    model.eval();
    NoGradGuard no_grad;
    std::vector<int64_t> seq = {4, 7, 1, 9, 2};
    KvCache cache = model.make_cache(1, 40, Device::cpu());
    Tensor h = model.trunk(ids(seq), 0, &cache);
    cache.length = static_cast<int64_t>(seq.size());
    for (int step = 0; step < 12; ++step) {
      const std::vector<float> cached = last_row(model.head(h));
      const std::vector<float> full = last_row(model.head(model.trunk(ids(seq), 0)));
      for (size_t v = 0; v < full.size(); ++v)
        ASSERT_NEAR(cached[v], full[v], 1e-5) << positions << " step " << step << " token " << v;
      const int64_t next = argmax_of(full);
      seq.push_back(next);
      h = model.trunk(ids({next}), cache.length, &cache);
      cache.length += 1;
    }
  }
}

TEST(GptMtpGenerateTest, GreedyGenerationEqualsArgmaxOverRecomputedSequences) {
  GptMtp model(small_options("deepseek", 2));
  randomize(model, 2);
  const std::vector<int64_t> prompt = {3, 3, 8};
  GenerateOptions g;
  g.max_tokens = 15;
  const GenerateResult r = generate(model, prompt, g);
  EXPECT_TRUE(model.is_training()) << "generate must restore the training mode";
  std::vector<int64_t> seq = prompt, want;
  {
    NoGradGuard no_grad;
    model.eval();
    for (int i = 0; i < 15; ++i) {
      want.push_back(argmax_of(last_row(model.head(model.trunk(ids(seq), 0)))));
      seq.push_back(want.back());
    }
  }
  EXPECT_EQ(r.tokens, want);
  EXPECT_EQ(r.stop_reason, "max_tokens");
  EXPECT_EQ(r.trunk_steps, 14);
}

TEST(GptMtpGenerateTest, DeepSeekDepthCacheEqualsFullRecomputation) {
  GptMtp model(small_options("deepseek", 2));
  randomize(model, 3);
  model.eval();
  NoGradGuard no_grad;
  const std::vector<int64_t> seq = {1, 5, 2, 11, 0, 6, 6, 3, 9, 4};
  const int64_t n = static_cast<int64_t>(seq.size());
  const Tensor h0 = model.trunk(ids(seq), 0);
  // Depth 1 over positions [0, n-1) reads t_{i+1}: the full pass and a cached pass in two chunks.
  const Tensor shifted = ids(std::vector<int64_t>(seq.begin() + 1, seq.end()));
  const Tensor full = model.mtp_head(1, model.mtp_hidden(1, h0.slice(1, 0, n - 1), shifted, 0));
  KvCache cache = model.make_mtp_cache(1, 1, 40, Device::cpu());
  model.mtp_hidden(1, h0.slice(1, 0, 6), shifted.slice(1, 0, 6), 0, &cache);
  cache.length = 6;
  const Tensor tail = model.mtp_head(1, model.mtp_hidden(1, h0.slice(1, 6, n - 1), shifted.slice(1, 6, n - 1), 6, &cache));
  const std::vector<float> a = full.slice(1, 6, n - 1).contiguous().to_vector<float>(), b = tail.to_vector<float>();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5) << i;
}

void expect_speculative_equals_greedy(GptMtp& model, const std::vector<int64_t>& prompt, int64_t max_tokens,
                                      GenerateResult* speculative_result = nullptr) {
  GenerateOptions g;
  g.max_tokens = max_tokens;
  const GenerateResult greedy = generate(model, prompt, g);
  g.speculative = true;
  const GenerateResult spec = generate(model, prompt, g);
  EXPECT_EQ(spec.tokens, greedy.tokens) << model.options().mtp_kind << " depth " << model.depth();
  EXPECT_EQ(spec.stop_reason, greedy.stop_reason);
  EXPECT_GT(spec.drafted, 0);
  EXPECT_LE(spec.trunk_steps, greedy.trunk_steps);
  EXPECT_EQ(std::accumulate(spec.accepted_at_depth.begin(), spec.accepted_at_depth.end(), int64_t{0}), spec.accepted);
  if (speculative_result) *speculative_result = spec;
}

TEST(GptMtpGenerateTest, SpeculativeEqualsGreedyForRandomModels) {
  uint64_t seed = 10;
  for (const auto& [kind, depth] : std::vector<std::pair<std::string, int64_t>>{
           {"deepseek", 1}, {"deepseek", 2}, {"deepseek", 3}, {"medusa", 1}, {"medusa", 3}}) {
    GptMtp model(small_options(kind, depth));
    randomize(model, ++seed);
    expect_speculative_equals_greedy(model, {2, 9, 4}, 30);
  }
}

TEST(GptMtpGenerateTest, SpeculativeStopsAtContextAndStopTokenLikeGreedy) {
  GptMtp model(small_options("deepseek", 3));
  randomize(model, 21);
  expect_speculative_equals_greedy(model, {1, 2, 3, 4, 5, 6, 7, 8}, 100);  // runs into the context of 40
  GenerateOptions g;
  g.max_tokens = 30;
  const GenerateResult plain = generate(model, {5, 1}, g);
  ASSERT_GE(plain.tokens.size(), 6u);
  g.stop_token = plain.tokens[5];
  const GenerateResult greedy = generate(model, {5, 1}, g);
  g.speculative = true;
  const GenerateResult spec = generate(model, {5, 1}, g);
  EXPECT_EQ(greedy.stop_reason, "stop_token");
  EXPECT_EQ(spec.tokens, greedy.tokens);
  EXPECT_EQ(spec.stop_reason, "stop_token");
}

// A cycle through a permutation of the vocabulary: every next token (and every token k ahead)
// is a function of the current one, so trained heads draft well.
Tensor cycle_windows(const std::vector<int64_t>& cycle, int64_t rows, int64_t width, Generator& gen) {
  const std::vector<int64_t> starts = randint({rows}, 0, 13, DType::i64, Device::cpu(), &gen).to_vector<int64_t>();
  std::vector<int64_t> v;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < width; ++i) v.push_back(cycle[(starts[r] + i) % cycle.size()]);
  return Tensor::from_vector(v, {rows, width});
}

TEST(GptMtpGenerateTest, TrainedHeadsDraftTokensThatAreAccepted) {
  const std::vector<int64_t> cycle = {4, 11, 0, 7, 2, 9, 12, 5, 1, 8, 3, 10, 6};
  for (const std::string kind : {"deepseek", "medusa"}) {
    manual_seed(4);
    GptMtp model(small_options(kind, 3));
    optim::AdamW opt(model.parameters(), {.lr = 1e-2, .weight_decay = 0.0});
    Generator gen(5);
    double first = 0, last = 0;
    for (int step = 0; step < 150; ++step) {
      opt.zero_grad();
      const Tensor w = cycle_windows(cycle, 4, 16 + 1 + 3, gen);
      const GptMtpLosses l = gpt_mtp_loss(model.forward_window(w), w, 1.0);
      l.total.backward();
      opt.step();
      (step == 0 ? first : last) = l.total.item();
    }
    ASSERT_LT(last, 0.2 * first) << kind << ": the model did not learn the cycle";
    GenerateResult spec;
    expect_speculative_equals_greedy(model, {7, 2}, 30, &spec);
    EXPECT_GT(spec.acceptance_rate(), 0.8) << kind;
    EXPECT_LT(spec.trunk_steps, 12) << kind << ": 30 tokens should take far fewer than 29 trunk steps";
  }
}

TEST(GptMtpGenerateTest, SamplingIsSeededAndTinyTopPIsGreedy) {
  GptMtp model(small_options("medusa", 1));
  randomize(model, 31);
  GenerateOptions g;
  g.max_tokens = 20;
  const GenerateResult greedy = generate(model, {3}, g);
  g.temperature = 1.5;
  g.seed = 7;
  const GenerateResult a = generate(model, {3}, g), b = generate(model, {3}, g);
  EXPECT_EQ(a.tokens, b.tokens);
  g.seed = 8;
  EXPECT_NE(generate(model, {3}, g).tokens, a.tokens);
  g.top_p = 1e-9;
  EXPECT_EQ(generate(model, {3}, g).tokens, greedy.tokens);
}

TEST(GptMtpGenerateTest, BadRequestsAreErrors) {
  GptMtp model(small_options("none", 0));
  auto message = [&](const std::vector<int64_t>& prompt, GenerateOptions g) {
    try {
      generate(model, prompt, g);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  GenerateOptions g;
  EXPECT_NE(message({}, g).find("prompt is empty"), std::string::npos);
  EXPECT_NE(message({13}, g).find("outside the vocabulary [0, 13)"), std::string::npos);
  EXPECT_NE(message(std::vector<int64_t>(41, 1), g).find("more than the model's context of 40"), std::string::npos);
  g.speculative = true;
  EXPECT_NE(message({1}, g).find("needs MTP heads"), std::string::npos);
}

}  // namespace
}  // namespace tessera::models
