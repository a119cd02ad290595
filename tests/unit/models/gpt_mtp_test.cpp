// GPT-MTP (framework/models/gpt_mtp.h): parameter names, the MTP loss and its label shifting on
// hand-made logits, which tokens each depth may see, config errors that name the key, and
// decoding: KV-cached greedy equals full recomputation, speculative equals greedy.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/core/error.h"
#include "framework/models/gpt_mtp.h"
#include "framework/models/gpt_mtp_generate.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/train/job.h"
#include "framework/train/jobs/gpt_mtp_settings.h"

namespace tessera::models {
namespace {

GptMtpOptions tiny(const std::string& kind, int64_t depth) {
  GptMtpOptions o;
  o.vocab_size = 13;
  o.context = 32;
  o.n_layers = 2;
  o.dim = 16;
  o.n_heads = 4;
  o.n_kv_heads = 2;
  o.mtp_kind = kind;
  o.mtp_depth = depth;
  return o;
}

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// ---------------------------------------------------------------------------------------------
// Structure

TEST(GptMtpTest, ParameterNamesFollowPyTorch) {
  GptMtp deepseek(tiny("deepseek", 1));
  std::vector<std::string> names;
  for (const auto& [name, t] : deepseek.named_parameters()) names.push_back(name + shape_str(t.shape()));
  const std::vector<std::string> want = {
      "tok_emb.weight[13, 16]",         "blocks.0.norm1.weight[16]",       "blocks.0.attn.qkv.weight[32, 16]",
      "blocks.0.attn.proj.weight[16, 16]", "blocks.0.norm2.weight[16]",    "blocks.0.mlp.fc.weight[64, 16]",
      "blocks.0.mlp.proj.weight[16, 64]", "blocks.1.norm1.weight[16]",     "blocks.1.attn.qkv.weight[32, 16]",
      "blocks.1.attn.proj.weight[16, 16]", "blocks.1.norm2.weight[16]",    "blocks.1.mlp.fc.weight[64, 16]",
      "blocks.1.mlp.proj.weight[16, 64]", "norm_f.weight[16]",             "mtp.0.norm_h.weight[16]",
      "mtp.0.norm_e.weight[16]",        "mtp.0.proj.weight[16, 32]",       "mtp.0.block.norm1.weight[16]",
      "mtp.0.block.attn.qkv.weight[32, 16]", "mtp.0.block.attn.proj.weight[16, 16]", "mtp.0.block.norm2.weight[16]",
      "mtp.0.block.mlp.fc.weight[64, 16]", "mtp.0.block.mlp.proj.weight[16, 64]", "mtp.0.norm_out.weight[16]"};
  EXPECT_EQ(names, want);

  GptMtpOptions o = tiny("medusa", 2);
  o.norm = "layernorm";
  o.positions = "learned";
  o.mlp = "swiglu";
  o.tie_embeddings = false;
  o.mtp_shared_head = false;
  GptMtp medusa(o);
  std::map<std::string, Shape> shapes;
  for (const auto& [name, t] : medusa.named_parameters()) shapes[name] = t.shape();
  EXPECT_EQ(shapes.at("pos_emb.weight"), (Shape{32, 16}));
  EXPECT_EQ(shapes.at("blocks.1.norm2.bias"), (Shape{16}));
  EXPECT_EQ(shapes.at("blocks.0.mlp.fc.weight"), (Shape{2 * 64, 16}));  // gate and up rows, 8/3*16 -> 64
  EXPECT_EQ(shapes.at("lm_head.weight"), (Shape{13, 16}));
  EXPECT_EQ(shapes.at("medusa.1.fc.bias"), (Shape{16}));
  EXPECT_EQ(shapes.at("medusa.1.head.weight"), (Shape{13, 16}));
  EXPECT_EQ(shapes.count("mtp.0.proj.weight"), 0u);
}

TEST(GptMtpTest, ForwardWindowGivesOneLogitTensorPerDepth) {
  manual_seed(1);
  GptMtp model(tiny("deepseek", 2));
  const Tensor window = randint({3, 10 + 1 + 2}, 0, 13);
  const GptMtpOutput out = model.forward_window(window);
  EXPECT_EQ(out.logits.shape(), (Shape{3, 10, 13}));
  ASSERT_EQ(out.mtp_logits.size(), 2u);
  for (const Tensor& l : out.mtp_logits) EXPECT_EQ(l.shape(), (Shape{3, 10, 13}));
}

// ---------------------------------------------------------------------------------------------
// Loss and label shifting on hand-made logits

// log(sum exp(row)) - row[target] in double.
double cross_entropy_of(const std::vector<double>& row, int64_t target) {
  double top = row[0];
  for (double v : row) top = std::max(top, v);
  double s = 0.0;
  for (double v : row) s += std::exp(v - top);
  return top + std::log(s) - row[target];
}

TEST(GptMtpLossTest, DepthKIsScoredAgainstTokenIPlusKPlusOne) {
  // Vocabulary 6, T = 4, D = 2: windows hold T + 1 + D = 7 tokens.
  const int64_t vocab = 6, len = 4, depth = 2;
  const std::vector<int64_t> window_ids = {5, 0, 3, 1, 4, 2, 0};
  const Tensor window = Tensor::from_vector(window_ids, {1, 7});
  // Logits that put 8 on one token and 0 elsewhere: each head "predicts" a chosen token.
  auto confident = [&](const std::vector<int64_t>& picks) {
    std::vector<double> v(static_cast<size_t>(len * vocab), 0.0);
    for (int64_t i = 0; i < len; ++i) v[i * vocab + picks[i]] = 8.0;
    return Tensor::from_vector(v, {1, len, vocab});
  };
  GptMtpOutput out;
  out.logits = confident({0, 3, 1, 4});                   // t_{i+1}: right everywhere
  out.mtp_logits.push_back(confident({3, 1, 4, 2}));      // t_{i+2}: right everywhere
  out.mtp_logits.push_back(confident({1, 0, 3, 0}));      // t_{i+3} = 1, 4, 2, 0: wrong at i = 1 and 2
  const double lambda = 0.3;
  const GptMtpLosses l = gpt_mtp_loss(out, window, lambda);

  const double right = cross_entropy_of({8, 0, 0, 0, 0, 0}, 0), wrong = cross_entropy_of({8, 0, 0, 0, 0, 0}, 1);
  EXPECT_NEAR(l.main.item(), right, 1e-5);
  ASSERT_EQ(l.mtp.size(), 2u);
  EXPECT_NEAR(l.mtp[0].item(), right, 1e-5);
  EXPECT_NEAR(l.mtp[1].item(), (2 * right + 2 * wrong) / 4, 1e-5);
  EXPECT_NEAR(l.total.item(), right + lambda / depth * (right + (2 * right + 2 * wrong) / 4), 1e-5);
  EXPECT_LT(right, 0.01);
  EXPECT_GT(wrong, 7.9);
}

TEST(GptMtpLossTest, RandomLogitsMatchDoublePrecisionFormula) {
  Generator gen(11);
  const int64_t batch = 2, len = 5, vocab = 7, depth = 3;
  const Tensor window = randint({batch, len + 1 + depth}, 0, vocab, DType::i64, Device::cpu(), &gen);
  GptMtpOutput out;
  out.logits = randn({batch, len, vocab}, 0.0, 2.0, DType::f32, Device::cpu(), &gen);
  for (int64_t k = 0; k < depth; ++k)
    out.mtp_logits.push_back(randn({batch, len, vocab}, 0.0, 2.0, DType::f32, Device::cpu(), &gen));
  const GptMtpLosses l = gpt_mtp_loss(out, window, 0.5);

  const std::vector<int64_t> w = window.to_vector<int64_t>();
  auto mean_ce = [&](const Tensor& logits, int64_t shift) {
    const std::vector<double> v = logits.to_vector<double>();
    double total = 0.0;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < len; ++i) {
        const std::vector<double> row(v.begin() + (b * len + i) * vocab, v.begin() + (b * len + i + 1) * vocab);
        total += cross_entropy_of(row, w[b * (len + 1 + depth) + i + shift]);
      }
    return total / static_cast<double>(batch * len);
  };
  const double main = mean_ce(out.logits, 1);
  double mtp = 0.0;
  for (int64_t k = 1; k <= depth; ++k) {
    const double ce = mean_ce(out.mtp_logits[k - 1], k + 1);
    EXPECT_NEAR(l.mtp[k - 1].item(), ce, 1e-5) << "depth " << k;
    mtp += ce;
  }
  EXPECT_NEAR(l.main.item(), main, 1e-5);
  EXPECT_NEAR(l.total.item(), main + 0.5 / depth * mtp, 1e-5);
}

TEST(GptMtpLossTest, WindowTooShortNamesTheShapes) {
  GptMtpOutput out;
  out.logits = Tensor::zeros({1, 4, 5});
  out.mtp_logits = {Tensor::zeros({1, 4, 5}), Tensor::zeros({1, 4, 5})};
  EXPECT_NE(message_of([&] { gpt_mtp_loss(out, Tensor::zeros({1, 6}, DType::i64), 0.3); }).find("need [1, 7]"),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// What each depth sees: logits at position i must not change when a token it may not see does.

// Max |difference| of logits at position i between two windows that differ in one token.
double change_at(GptMtp& model, int64_t depth, int64_t position, int64_t changed_token) {
  const int64_t len = 8, width = len + 1 + model.depth();
  std::vector<int64_t> ids(static_cast<size_t>(width));
  for (int64_t i = 0; i < width; ++i) ids[i] = (3 * i + 1) % 13;
  const Tensor a = Tensor::from_vector(ids, {1, width});
  ids[changed_token] = (ids[changed_token] + 5) % 13;
  const Tensor b = Tensor::from_vector(ids, {1, width});
  NoGradGuard no_grad;
  const GptMtpOutput oa = model.forward_window(a), ob = model.forward_window(b);
  const Tensor la = depth == 0 ? oa.logits : oa.mtp_logits[depth - 1];
  const Tensor lb = depth == 0 ? ob.logits : ob.mtp_logits[depth - 1];
  return max(abs(la.slice(1, position, position + 1) - lb.slice(1, position, position + 1))).item();
}

TEST(GptMtpTest, DeepSeekDepthKSeesTokensUpToIPlusK) {
  manual_seed(2);
  GptMtp model(tiny("deepseek", 2));
  const int64_t i = 3;
  EXPECT_GT(change_at(model, 0, i, i), 1e-4);
  EXPECT_EQ(change_at(model, 0, i, i + 1), 0.0);
  for (int64_t k = 1; k <= 2; ++k) {
    EXPECT_GT(change_at(model, k, i, i + k), 1e-4) << "depth " << k << " ignores t_{i+k}";
    EXPECT_EQ(change_at(model, k, i, i + k + 1), 0.0) << "depth " << k << " sees its own target t_{i+k+1}";
  }
}

TEST(GptMtpTest, MedusaHeadsSeeOnlyThePrefix) {
  manual_seed(3);
  GptMtpOptions o = tiny("medusa", 2);
  GptMtp model(o);
  {
    NoGradGuard no_grad;  // the fc layers start at zero; make the heads differ from the main head
    for (const auto& [name, p] : model.named_parameters())
      if (name.rfind("medusa.", 0) == 0) copy_into(p, randn(p.shape(), 0.0, 0.3));
  }
  for (int64_t k = 1; k <= 2; ++k) {
    EXPECT_GT(change_at(model, k, 3, 3), 1e-4);
    EXPECT_EQ(change_at(model, k, 3, 4), 0.0);
  }
}

// ---------------------------------------------------------------------------------------------
// Config errors name the key

std::string settings_error(const std::string& toml) {
  return message_of([&] { train::read_gpt_mtp_settings(train::Config::from_string(toml, "test.toml")); });
}

TEST(GptMtpConfigTest, BadValuesNameTheKey) {
  const std::string base = "model.vocab_size = 100\ntrain.steps = 10\n";
  EXPECT_NE(settings_error(base + "model.dim = 512\nmodel.n_heads = 7\n")
                .find("config key `model.n_heads`=7 does not divide `model.dim`=512"),
            std::string::npos);
  const std::string mlp = settings_error(base + "model.mlp = \"relu\"\n");
  EXPECT_NE(mlp.find("`model.mlp`"), std::string::npos) << mlp;
  EXPECT_NE(mlp.find("unknown activation"), std::string::npos) << mlp;
  const std::string kind = settings_error(base + "model.mtp_kind = \"eagle\"\n");
  EXPECT_NE(kind.find("`model.mtp_kind` is \"eagle\""), std::string::npos) << kind;
  EXPECT_NE(kind.find("deepseek, medusa, none"), std::string::npos) << kind;
  EXPECT_NE(settings_error(base + "model.n_heads = 4\nmodel.n_kv_heads = 3\n").find("`model.n_kv_heads`=3"),
            std::string::npos);
  EXPECT_NE(settings_error(base + "model.norm = \"batchnorm\"\n").find("`model.norm`"), std::string::npos);
  EXPECT_NE(settings_error(base + "model.mtp_kind = \"none\"\nmodel.mtp_depth = 2\n").find("`model.mtp_depth`=2"),
            std::string::npos);
  EXPECT_NE(settings_error(base + "model.context = 64\ntrain.seq_len = 128\n").find("`train.seq_len`=128"),
            std::string::npos);
  EXPECT_NE(settings_error(base + "train.precision = \"f8\"\n").find("`train.precision`"), std::string::npos);
  EXPECT_NE(settings_error(base + "schedule.warmup_steps = 20\n").find("`schedule.warmup_steps`=20 exceeds"),
            std::string::npos);
  EXPECT_NE(settings_error("train.steps = 10\n").find("model.vocab_size"), std::string::npos);
}

TEST(GptMtpConfigTest, MisspeltKeyIsReportedAsUnknown) {
  const std::string e = settings_error("model.vocab_size = 100\ntrain.steps = 10\nmodel.n_head = 4\n");
  EXPECT_NE(e.find("unknown config key `model.n_head`"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean `model.n_heads`?"), std::string::npos) << e;
}

TEST(GptMtpConfigTest, MissingShardsNameTheFileAndTheCommands) {
  const train::Config config = train::Config::from_string(
      "job = \"gpt_mtp\"\nmodel.vocab_size = 512\ntrain.steps = 10\ndata.dir = \"/nonexistent/shards\"\n", "t.toml");
  config.get_string("job");
  const train::JobContext ctx{config, "/tmp/unused", "", Device::cpu()};
  const std::string e = message_of([&] { train::make_job("gpt_mtp", ctx); });
  EXPECT_NE(e.find("/nonexistent/shards/train.bin does not exist"), std::string::npos) << e;
  EXPECT_NE(e.find("tessera data tokenize"), std::string::npos) << e;
  EXPECT_NE(e.find("--vocab 512"), std::string::npos) << e;
}

TEST(GptMtpConfigTest, OptionsRoundTripThroughJson) {
  GptMtpOptions o = tiny("medusa", 3);
  o.norm = "layernorm";
  o.mtp_shared_head = false;
  const GptMtpOptions back = GptMtpOptions::from_json(o.to_json(), "state.json");
  EXPECT_EQ(back.to_json(), o.to_json());
  nlohmann::json broken = o.to_json();
  broken.erase("n_heads");
  EXPECT_NE(message_of([&] { GptMtpOptions::from_json(broken, "ckpt/state.json"); }).find("ckpt/state.json"),
            std::string::npos);
}

}  // namespace
}  // namespace tessera::models
