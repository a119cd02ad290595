// PyTorch parity, C++ side: an MLP with LayerNorm trained with AdamW on a fixed batch.
//
// Usage: mlp_parity OUT_DIR. Builds Linear(16->32) -> LayerNorm(32) -> GELU(tanh) ->
// Linear(32->10) (nn::MLP, the same child numbering as torch.nn.Sequential), writes the
// initial weights and the batch to OUT_DIR/init.safetensors, computes the cross-entropy loss
// and its gradients, runs 20 AdamW steps on the same batch and writes the first loss, the
// first gradients ("grad.<name>"), the loss of every step ("losses") and the final parameters
// ("final.<name>") to OUT_DIR/result.safetensors. mlp_parity.py repeats all of it in torch and
// compares. Everything is f32 on the CPU.
#include <cstdio>
#include <exception>
#include <string>

#include "framework/nn/layers.h"
#include "framework/ops/loss.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/train/safetensors.h"

namespace {

using namespace tessera;

constexpr int64_t kBatch = 8, kIn = 16, kHidden = 32, kClasses = 10, kSteps = 20;

void run(const std::string& dir) {
  Generator gen(1234);
  nn::MLP model(kIn, {kHidden}, kClasses, "gelu", 0.0, /*layer_norm=*/true, &gen);
  {
    // Give LayerNorm non-trivial affine parameters so their gradients are exercised too.
    NoGradGuard no_grad;
    for (auto& [name, p] : model.named_parameters()) {
      if (name == "1.weight") copy_into(p, randn(p.shape(), 1.0, 0.2, DType::f32, Device::cpu(), &gen));
      if (name == "1.bias") copy_into(p, randn(p.shape(), 0.0, 0.2, DType::f32, Device::cpu(), &gen));
    }
  }
  const Tensor input = randn({kBatch, kIn}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);
  const Tensor target = randint({kBatch}, 0, kClasses, DType::i64, Device::cpu(), &gen);

  nn::StateDict init;
  for (const auto& [name, p] : model.state_dict()) init.emplace_back(name, p.clone_data());
  init.emplace_back("input", input);
  init.emplace_back("target", target);
  train::save_safetensors(dir + "/init.safetensors", init, {{"steps", std::to_string(kSteps)}});

  const optim::AdamWOptions options{.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1};
  optim::AdamW opt(model.parameters(), options);
  nn::StateDict result;
  std::vector<double> losses;
  for (int64_t step = 0; step < kSteps; ++step) {
    opt.zero_grad();
    const Tensor loss = cross_entropy(model(input), target);
    loss.backward();
    losses.push_back(loss.item());
    if (step == 0) {
      result.emplace_back("loss", loss.detach().clone_data());
      for (const auto& [name, p] : model.named_parameters()) result.emplace_back("grad." + name, p.grad().clone_data());
    }
    opt.step();
  }
  result.emplace_back("losses", Tensor::from_vector(losses, {kSteps}, DType::f32));
  for (const auto& [name, p] : model.named_parameters()) result.emplace_back("final." + name, p.clone_data());
  train::save_safetensors(dir + "/result.safetensors", result);
  std::printf("mlp_parity: loss %.6f -> %.6f after %lld AdamW steps; files in %s\n", losses.front(), losses.back(),
              static_cast<long long>(kSteps), dir.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  try {
    run(argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mlp_parity: %s\n", e.what());
    return 1;
  }
  return 0;
}
