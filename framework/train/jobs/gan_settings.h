// Settings of the `gan` training job (gan_job.cpp): every config key it reads, with defaults
// that depend on the loss (examples/gan/README.md explains them).
//
// defines: tessera::train::GanSettings, GanOptimizerSettings, read_gan_settings, gan_loss_names
//
// Keys (defaults in brackets; "bce | wgan_clip | wgan_gp" marks a loss-dependent default):
//   seed [0], device [cpu], data.dir [/usr/share/datasets/fashion-mnist] (train images in [-1, 1])
//   gan.loss ["bce"|"wgan_clip"|"wgan_gp"], gan.n_critic [1 | 5 | 5] critic steps per generator
//     step, gan.clip [0.01] (wgan_clip only: critic weights clamped to [-clip, clip] after each
//     critic step), gan.gp_weight [10] (wgan_gp only)
//   model.latent [64], model.g_width [64], model.d_width [64], model.d_norm ["batch" | "batch" |
//     "none"; or "group"], model.d_groups [8] (group only), model.init ["dcgan"|"default"]
//   train.batch_size [64] (one rank's), train.steps (required; generator steps), train.stop_at [0]
//   optim_g.* and optim_d.* (each network's own optimizer): name ["adam" | "rmsprop" | "adam"],
//     lr [2e-4 | 5e-5 | 1e-4], betas [[0.5, 0.999] | - | [0.0, 0.9]] and eps [1e-8] (adam),
//     alpha [0.99] and eps [1e-8] (rmsprop), weight_decay [0]
//   sample.every [500; 0 = at the end only] (8x8 grid of a fixed noise in OUT/samples/step_<N>.png),
//     sample.seed [1234] (the fixed noise)
//   log.every [50], checkpoint.every [0 = at the end only], checkpoint.keep [3]
//   dist.* and metrics.* (distributed.h); dist.zero = 1 needs both optimizers "adam" without
//     weight decay (ZeRO-1's AdamW with decay 0 is Adam)
//   dist.sync_batchnorm [false]: under a launcher with more than one rank, every batch norm
//     (both networks) normalises with the statistics of the global batch (gan_job.cpp); read
//     here, not in read_dist_settings, so jobs without batch norm reject the key
// Keys that do not apply to the chosen loss or optimizer (gan.clip with bce, optim_d.betas with
// rmsprop) are not read, so setting them is an "unknown key" error rather than silently ignored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/models/gan.h"
#include "framework/train/config.h"
#include "framework/train/distributed.h"

namespace tessera::train {

const std::vector<std::string>& gan_loss_names();

struct GanOptimizerSettings {
  std::string name;  // adam | rmsprop
  double lr = 0.0, beta1 = 0.0, beta2 = 0.0, eps = 1e-8, alpha = 0.99, weight_decay = 0.0;
};

struct GanSettings {
  uint64_t seed = 0;
  std::string data_dir;
  std::string loss = "bce";
  int64_t n_critic = 1;
  double clip = 0.0;       // wgan_clip
  double gp_weight = 0.0;  // wgan_gp
  models::GanOptions model;
  int64_t batch_size = 64;
  int64_t steps = 0;
  int64_t stop_at = 0;
  GanOptimizerSettings optim_g, optim_d;
  int64_t sample_every = 500;
  uint64_t sample_seed = 1234;
  int64_t log_every = 50;
  int64_t checkpoint_every = 0, checkpoint_keep = 3;
  DistSettings dist;
  bool sync_batchnorm = false;  // dist.sync_batchnorm

  bool wgan() const { return loss != "bce"; }
};

// Reads every key, calls config.check_all_used(), then validates; errors name the key.
GanSettings read_gan_settings(const Config& config);

}  // namespace tessera::train
