// PyTorch parity, C++ side: tiny GPT-MTP models trained for 30 AdamW steps on fixed batches.
//
// Usage: gpt_mtp_parity OUT_DIR. For each of two configurations that between them cover every
// model option —
//   "deepseek": RMSNorm, rotary positions, SwiGLU, tied embeddings, grouped-query attention
//               (4 heads, 2 kv heads), DeepSeek MTP depth 2
//   "medusa":   LayerNorm, learned positions, GELU, untied head, Medusa depth 2 with own heads
// — it writes OUT_DIR/<name>.init.safetensors (initial weights, the 30 batches of token windows
// "windows" [30, B, T + 1 + D] and, as metadata, the model description and the optimizer
// settings), trains 30 steps (AdamW with weight decay on matrices only, gradient clipping at
// 1.0, constant learning rate, f32 on the CPU) and writes OUT_DIR/<name>.result.safetensors:
// the first step's losses (total, main, per depth) and the total loss of every step.
// gpt_mtp_parity.py builds the same model in torch from these files and compares.
#include <cstdio>
#include <exception>
#include <string>

#include "framework/models/gpt_mtp.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/optim/clip.h"
#include "framework/train/safetensors.h"

namespace {

using namespace tessera;

constexpr int64_t kSteps = 30, kBatch = 4, kSeq = 12;
constexpr double kLr = 3e-3, kWeightDecay = 0.1, kClip = 1.0;

models::GptMtpOptions deepseek_options() {
  models::GptMtpOptions o;
  o.vocab_size = 50;
  o.context = 16;
  o.n_layers = 2;
  o.dim = 32;
  o.n_heads = 4;
  o.n_kv_heads = 2;
  o.norm = "rmsnorm";
  o.positions = "rope";
  o.mlp = "swiglu";
  o.tie_embeddings = true;
  o.mtp_kind = "deepseek";
  o.mtp_depth = 2;
  o.mtp_lambda = 0.3;
  return o;
}

models::GptMtpOptions medusa_options() {
  models::GptMtpOptions o = deepseek_options();
  o.n_kv_heads = 0;
  o.norm = "layernorm";
  o.positions = "learned";
  o.mlp = "gelu";
  o.tie_embeddings = false;
  o.mtp_kind = "medusa";
  o.mtp_shared_head = false;
  o.mtp_lambda = 0.5;
  return o;
}

void run(const std::string& dir, const std::string& name, const models::GptMtpOptions& options, uint64_t seed) {
  Generator gen(seed);
  models::GptMtp model(options, &gen);
  {
    // Non-trivial norms and Medusa layers, so that their gradients matter from the first step.
    NoGradGuard no_grad;
    for (const auto& [key, p] : model.named_parameters()) {
      if (key.find("norm") != std::string::npos) copy_into(p, randn(p.shape(), 1.0, 0.1, DType::f32, Device::cpu(), &gen));
      if (key.rfind("medusa.", 0) == 0 && key.find(".fc.") != std::string::npos)
        copy_into(p, randn(p.shape(), 0.0, 0.05, DType::f32, Device::cpu(), &gen));
    }
  }
  const int64_t width = kSeq + 1 + options.depth();
  const Tensor windows = randint({kSteps, kBatch, width}, 0, options.vocab_size, DType::i64, Device::cpu(), &gen);

  nn::StateDict init;
  for (const auto& [key, p] : model.state_dict()) init.emplace_back(key, p.clone_data());
  init.emplace_back("windows", windows);
  train::save_safetensors(dir + "/" + name + ".init.safetensors", init,
                          {{"model", options.to_json().dump()},
                           {"steps", std::to_string(kSteps)},
                           {"lr", std::to_string(kLr)},
                           {"weight_decay", std::to_string(kWeightDecay)},
                           {"clip", std::to_string(kClip)}});

  std::vector<Tensor> decay, no_decay;
  for (const auto& [key, p] : model.named_parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  const optim::AdamWOptions o{.lr = kLr, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = kWeightDecay};
  optim::AdamW decay_opt(decay, o);
  optim::AdamW no_decay_opt(no_decay, {.lr = kLr, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.0});
  nn::StateDict result;
  std::vector<double> losses;
  for (int64_t step = 0; step < kSteps; ++step) {
    decay_opt.zero_grad();
    no_decay_opt.zero_grad();
    const Tensor window = windows.slice(0, step, step + 1).squeeze(0).contiguous();
    const models::GptMtpLosses l = models::gpt_mtp_loss(model.forward_window(window), window, options.mtp_lambda);
    l.total.backward();
    losses.push_back(l.total.item());
    if (step == 0) {
      result.emplace_back("first.total", l.total.detach().clone_data());
      result.emplace_back("first.main", l.main.detach().clone_data());
      std::vector<double> mtp;
      for (const Tensor& t : l.mtp) mtp.push_back(t.item());
      result.emplace_back("first.mtp", Tensor::from_vector(mtp, {static_cast<int64_t>(mtp.size())}, DType::f32));
    }
    optim::clip_grad_norm(model.parameters(), kClip);
    decay_opt.step();
    no_decay_opt.step();
  }
  result.emplace_back("losses", Tensor::from_vector(losses, {kSteps}, DType::f32));
  train::save_safetensors(dir + "/" + name + ".result.safetensors", result);
  std::printf("gpt_mtp_parity[%s]: %lld parameters, loss %.6f -> %.6f after %lld AdamW steps\n", name.c_str(),
              static_cast<long long>(model.parameter_count()), losses.front(), losses.back(),
              static_cast<long long>(kSteps));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  try {
    run(argv[1], "deepseek", deepseek_options(), 1234);
    run(argv[1], "medusa", medusa_options(), 4321);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpt_mtp_parity: %s\n", e.what());
    return 1;
  }
  return 0;
}
