// GPT-MTP on CUDA against the CPU: a few training steps of a tiny model in f32 (tight) and with
// bf16 compute and f32 master weights (tolerance: twice the CPU's own bf16 error), KV-cached and
// speculative generation, and the gpt_mtp job end to end on a small shard. Every CUDA
// allocation is poisoned (NaN). Skips with a message on machines without a CUDA device.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "framework/core/allocator.h"
#include "framework/data/token_shard.h"
#include "framework/models/gpt_mtp.h"
#include "framework/models/gpt_mtp_generate.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/optim/clip.h"
#include "framework/train/config.h"
#include "framework/train/job.h"
#include "tests/common/op_table.h"

namespace tessera::models {
namespace {

using testing::relative_error;

class CudaGptMtpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine: GPU tests skipped";
    cuda_set_poison(true);
  }
  void TearDown() override { cuda_set_poison(false); }
};

// head_dim 64: the tensor-core attention kernels run for bf16 (the f32 run takes the simple one).
GptMtpOptions options(const std::string& kind) {
  GptMtpOptions o;
  o.vocab_size = 97;
  o.context = 48;
  o.n_layers = 2;
  o.dim = 128;
  o.n_heads = 2;
  o.n_kv_heads = kind == "deepseek" ? 1 : 0;
  o.mlp = kind == "deepseek" ? "swiglu" : "gelu";
  o.positions = kind == "deepseek" ? "rope" : "learned";
  o.norm = kind == "deepseek" ? "rmsnorm" : "layernorm";
  o.tie_embeddings = kind == "deepseek";
  o.mtp_kind = kind;
  o.mtp_depth = 2;
  return o;
}

struct TrainingRun {
  std::vector<double> losses;
  nn::StateDict first_grads;  // the gradients of step 0 (before clipping)
  nn::StateDict final_state;
};

// ||a - b||_2 / ||b||_2 over all elements: Adam turns rounding-level differences in gradients
// near zero into +-lr updates, so a max-norm comparison of parameters after a few steps
// measures that amplification, not the kernels; the L2 norm weighs it by how rare it is.
double l2_relative_error(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  if (va.size() != vb.size()) return INFINITY;
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < va.size(); ++i) {
    diff += (va[i] - vb[i]) * (va[i] - vb[i]);
    norm += vb[i] * vb[i];
  }
  return std::sqrt(diff) / (std::sqrt(norm) + 1e-12);
}

// `steps` AdamW steps with clipping on fixed random windows; the model is built on the CPU
// from `seed` and then moved, so both devices start from the same weights.
TrainingRun train(const GptMtpOptions& o, Device device, DType compute, int steps, uint64_t seed = 5) {
  Generator gen(seed);
  GptMtp model(o, &gen);
  model.to(device);
  model.set_compute_dtype(compute);
  std::vector<Tensor> decay, no_decay;
  for (const auto& [name, p] : model.named_parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  optim::AdamW a(decay, {.lr = 3e-3, .beta1 = 0.9, .beta2 = 0.95, .weight_decay = 0.1});
  optim::AdamW b(no_decay, {.lr = 3e-3, .beta1 = 0.9, .beta2 = 0.95, .weight_decay = 0.0});
  Generator data(seed + 1);
  TrainingRun run;
  for (int step = 0; step < steps; ++step) {
    const Tensor w = randint({4, 40 + 1 + o.depth()}, 0, o.vocab_size, DType::i64, Device::cpu(), &data).to(device);
    a.zero_grad();
    b.zero_grad();
    const GptMtpLosses l = gpt_mtp_loss(model.forward_window(w), w, o.mtp_lambda);
    l.total.backward();
    if (step == 0)
      for (const auto& [name, p] : model.named_parameters())
        if (p.grad().defined()) run.first_grads.emplace_back(name, p.grad().to(Device::cpu()));
    optim::clip_grad_norm(model.parameters(), 1.0);
    a.step();
    b.step();
    run.losses.push_back(l.total.item());
  }
  for (const auto& [name, p] : model.state_dict()) run.final_state.emplace_back(name, p.to(Device::cpu()));
  return run;
}

TEST_F(CudaGptMtpTest, F32TrainingStepsMatchCpu) {
  for (const std::string kind : {"deepseek", "medusa"}) {
    const TrainingRun cpu = train(options(kind), Device::cpu(), DType::f32, 4);
    const TrainingRun gpu = train(options(kind), Device::cuda(0), DType::f32, 4);
    for (size_t s = 0; s < cpu.losses.size(); ++s)
      EXPECT_NEAR(gpu.losses[s], cpu.losses[s], 1e-4 * std::abs(cpu.losses[s])) << kind << " step " << s;
    for (size_t i = 0; i < cpu.first_grads.size(); ++i)
      EXPECT_LE(relative_error(gpu.first_grads[i].second, cpu.first_grads[i].second), 1e-3)
          << kind << " gradient of " << cpu.first_grads[i].first;
    for (size_t i = 0; i < cpu.final_state.size(); ++i)
      EXPECT_LE(l2_relative_error(gpu.final_state[i].second, cpu.final_state[i].second), 1e-3)
          << kind << " " << cpu.final_state[i].first;
  }
}

TEST_F(CudaGptMtpTest, Bf16ComputeWithF32MastersTracksTheF32Run) {
  for (const std::string kind : {"deepseek", "medusa"}) {
    const TrainingRun reference = train(options(kind), Device::cpu(), DType::f32, 4);
    const TrainingRun cpu_bf16 = train(options(kind), Device::cpu(), DType::bf16, 4);
    const TrainingRun gpu_bf16 = train(options(kind), Device::cuda(0), DType::bf16, 4);
    for (size_t s = 0; s < reference.losses.size(); ++s) {
      const double own_error = std::abs(cpu_bf16.losses[s] - reference.losses[s]);
      const double tolerance = std::max(2.0 * own_error, 5e-3 * std::abs(reference.losses[s]));
      EXPECT_NEAR(gpu_bf16.losses[s], reference.losses[s], tolerance) << kind << " step " << s;
    }
    for (size_t i = 0; i < reference.final_state.size(); ++i) {
      EXPECT_EQ(gpu_bf16.final_state[i].second.dtype(), DType::f32) << "master weights must stay f32";
      const double own_error = relative_error(cpu_bf16.final_state[i].second, reference.final_state[i].second);
      EXPECT_LE(relative_error(gpu_bf16.final_state[i].second, reference.final_state[i].second),
                std::max(2.0 * own_error, 1e-2))
          << kind << " " << reference.final_state[i].first;
    }
  }
}

TEST_F(CudaGptMtpTest, GenerationMatchesCpuAndSpeculativeMatchesGreedy) {
  for (const std::string kind : {"deepseek", "medusa"}) {
    Generator gen(9);
    GptMtp cpu_model(options(kind), &gen);
    {
      NoGradGuard no_grad;  // weights large enough that logits have no near-ties
      Generator w(10);
      for (const auto& [name, p] : cpu_model.named_parameters())
        copy_into(p, randn(p.shape(), name.find("norm") != std::string::npos ? 1.0 : 0.0, 0.2, DType::f32,
                           Device::cpu(), &w));
    }
    GptMtp gpu_model(options(kind));
    gpu_model.load_state_dict(cpu_model.state_dict());
    gpu_model.to(Device::cuda(0));
    GenerateOptions g;
    g.max_tokens = 24;
    const GenerateResult on_cpu = generate(cpu_model, {5, 17, 3}, g);
    const GenerateResult on_gpu = generate(gpu_model, {5, 17, 3}, g);
    EXPECT_EQ(on_gpu.tokens, on_cpu.tokens) << kind;
    g.speculative = true;
    EXPECT_EQ(generate(gpu_model, {5, 17, 3}, g).tokens, on_gpu.tokens) << kind << " speculative (f32)";
    gpu_model.to(DType::bf16);
    gpu_model.set_compute_dtype(DType::bf16);
    g.speculative = false;
    const GenerateResult bf16_greedy = generate(gpu_model, {5, 17, 3}, g);
    g.speculative = true;
    EXPECT_EQ(generate(gpu_model, {5, 17, 3}, g).tokens, bf16_greedy.tokens) << kind << " speculative (bf16)";
  }
}

TEST_F(CudaGptMtpTest, JobTrainsOnCudaInBf16) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("tessera_gpt_mtp_cuda_" + std::to_string(::getpid()));
  fs::create_directories(dir / "shards");
  Generator gen(3);
  std::vector<uint32_t> tokens;
  for (int64_t v : randint({20000}, 0, 97, DType::i64, Device::cpu(), &gen).to_vector<int64_t>())
    tokens.push_back(static_cast<uint32_t>(v));
  for (const char* split : {"train.bin", "val.bin"}) {
    data::TokenShardWriter w((dir / "shards" / split).string(), 97);
    w.append(tokens);
    w.close();
  }
  const train::Config config = train::Config::from_string(
      "job = \"gpt_mtp\"\n"
      "data.dir = \"" + (dir / "shards").string() + "\"\n"
      "model.vocab_size = 97\nmodel.context = 64\nmodel.n_layers = 2\nmodel.dim = 128\nmodel.n_heads = 2\n"
      "model.mtp_depth = 2\ntrain.batch_size = 4\ntrain.steps = 6\ntrain.grad_accum = 2\n"
      "eval.every = 3\neval.max_batches = 2\nlog.every = 2\n",
      "cuda_test.toml");
  config.get_string("job");
  const train::JobContext ctx{config, (dir / "run").string(), "", Device::cuda(0)};
  auto job = train::make_job("gpt_mtp", ctx);
  config.check_all_used();
  job->run();
  std::ifstream log(dir / "run" / "log.jsonl");
  std::string line, last_eval;
  while (std::getline(log, line))
    if (line.find("val_loss") != std::string::npos) last_eval = line;
  EXPECT_NE(last_eval.find("\"step\":6"), std::string::npos) << last_eval;
  EXPECT_NE(last_eval.find("\"mtp_accuracy\":["), std::string::npos) << last_eval;
  EXPECT_TRUE(fs::exists(dir / "run" / "checkpoints" / "step_6" / "model.safetensors"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tessera::models
