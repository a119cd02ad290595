// DCGAN networks for 28x28 images: the generator and the discriminator/critic that the `gan`
// training job (DCGAN, WGAN, WGAN-GP), `tessera sample` and `tessera eval fid` build.
//
// defines: tessera::models::GanOptions, DcganGenerator, DcganCritic, critic_norm_names
//
// Generator (width w = g_width; z [B, latent] or [B, latent, 1, 1] -> images [B, C, 28, 28]):
//   net.0 ConvTranspose2d(latent -> 2w, k7, no bias)        1x1   -> 7x7
//   net.1 BatchNorm2d(2w), net.2 ReLU
//   net.3 ConvTranspose2d(2w -> w, k4 s2 p1, no bias)       7x7   -> 14x14
//   net.4 BatchNorm2d(w),  net.5 ReLU
//   net.6 ConvTranspose2d(w -> C, k4 s2 p1)                 14x14 -> 28x28
//   net.7 Tanh                                              values in (-1, 1)
// Critic (width w = d_width; images [B, C, 28, 28] -> one logit/score per image [B]):
//   net.0 Conv2d(C -> w, k4 s2 p1), net.1 LeakyReLU(0.2)    28x28 -> 14x14
//   net.2 Conv2d(w -> 2w, k4 s2 p1, bias only without norm) 14x14 -> 7x7
//   net.3 BatchNorm2d(2w) | GroupNorm(groups, 2w)           (absent with d_norm = "none")
//   next  LeakyReLU(0.2), then Conv2d(2w -> 1, k7) and Flatten
// The numbering is torch.nn.Sequential's inside an attribute `net`, so a state dict loads into
// the same model written in PyTorch. WGAN-GP needs d_norm "none" (or "group"): batch norm
// couples the images of a batch, which the per-image gradient penalty assumes they are not.
// init "dcgan" draws conv weights from N(0, 0.02) and batch-norm weights from N(1, 0.02) with
// zero biases (Radford et al. 2015); "default" keeps PyTorch's layer defaults.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/core/rng.h"
#include "framework/nn/module.h"
#include "framework/nn/sequential.h"

namespace tessera::models {

// "batch", "group", "none"
const std::vector<std::string>& critic_norm_names();

struct GanOptions {
  int64_t latent = 64;     // z dimension
  int64_t g_width = 64;    // generator: channels at 14x14 (2x at 7x7)
  int64_t d_width = 64;    // critic: channels at 14x14 (2x at 7x7)
  int64_t channels = 1;    // image channels
  std::string d_norm = "batch";
  int64_t d_groups = 8;    // GroupNorm groups (d_norm = "group"); must divide 2 * d_width
  std::string init = "dcgan";  // "dcgan" | "default"

  // Errors name the option (as the `model.*` config key) and the value.
  void validate() const;
  nlohmann::json to_json() const;
  // Errors name `where` (a state.json path) and the missing or bad field.
  static GanOptions from_json(const nlohmann::json& j, const std::string& where);
};

class DcganGenerator : public nn::UnaryModule {
 public:
  static constexpr int64_t kImageSize = 28;
  // Parameters are drawn from `gen` (the default generator when null), f32 on the CPU.
  explicit DcganGenerator(const GanOptions& options, Generator* gen = nullptr);
  // z [B, latent] or [B, latent, 1, 1] -> [B, channels, 28, 28] in (-1, 1)
  Tensor forward(const Tensor& z) override;
  const GanOptions& options() const { return options_; }

 private:
  GanOptions options_;
  std::shared_ptr<nn::Sequential> net_;
};

class DcganCritic : public nn::UnaryModule {
 public:
  explicit DcganCritic(const GanOptions& options, Generator* gen = nullptr);
  // images [B, channels, 28, 28] -> [B] (a logit for BCE, a score for WGAN)
  Tensor forward(const Tensor& images) override;
  const GanOptions& options() const { return options_; }

 private:
  GanOptions options_;
  std::shared_ptr<nn::Sequential> net_;
};

}  // namespace tessera::models
