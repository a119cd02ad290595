// DataParallelOptimizer: one set of parameters that steps together, with its gradients averaged
// across ranks, its loss scaled for fp16, its gradients clipped and its checkpoint state.
//
// defines: tessera::train::DataParallelOptimizer, DpOptimizerOptions, MicroStep, NamedOptimizer,
//          read_grad_scaler_options, save_dp_checkpoint, restore_dp_optimizers
//
// Two modes, chosen by dist.zero:
//  * plain (dist.zero = 0): the job's own optimizers (one, or several over disjoint parameters,
//    e.g. AdamW with and without weight decay) plus, while a process group runs, a dist::Reducer
//    over all their parameters: bucket all-reduces start from grad-ready hooks during the last
//    micro-step's backward; finish() in step() waits and writes the averaged f32 gradients.
//  * ZeRO-1 (dist.zero = 1): one dist::ZeroAdamW over all the parameters (with a weight-decay
//    mask standing in for decay/no-decay groups); gradients stay local until step(), which
//    reduce-scatters them. AdamW only.
// A step, as the job writes it:
//   opt.set_lr(lr); opt.zero_grad();
//   for (micro = 0; micro < accum; ++micro) {
//     MicroStep sync = opt.micro_step(micro, accum);   // no communication but on the last
//     opt.scale(loss).backward();
//   }
//   bool stepped = opt.step();   // reduce, unscale + overflow check (fp16), clip, update
// step() returns false when GradScaler found an inf/NaN on any rank: every rank skips it.
// grad_norm() is the norm before clipping (a device scalar; defined when clipping is on).
//
// Several optimizers in one job (a GAN's generator and critic): one DataParallelOptimizer per
// network, set_sync(false) on the one whose gradients are not wanted in a step, and zero_grad()
// before each network's backward; parameters without a gradient in a step are skipped by the
// Reducer (gradient-less buckets) and by ZeRO, as long as every rank agrees which ones.
//
// Checkpoints (save_dp_checkpoint, collective): rank 0 writes RUN/checkpoints/step_<N>/ with the
// job's files plus, per plain optimizer, <name>.safetensors (state dicts, each optimizer's under
// its prefix); a ZeRO optimizer is saved by every rank as a sharded directory <name>.zero/
// (zero_checkpoint.h), which a run at another world size re-shards on load. state.json records,
// per optimizer, the mode and the loss-scaler state.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/amp/grad_scaler.h"
#include "framework/dist/ddp.h"
#include "framework/dist/zero.h"
#include "framework/optim/optimizer.h"
#include "framework/train/checkpoint.h"
#include "framework/train/config.h"
#include "framework/train/distributed.h"

namespace tessera::train {

struct DpOptimizerOptions {
  double max_grad_norm = 0.0;      // clip by the global norm; 0: off
  amp::GradScalerOptions scaler;   // enabled only for fp16 compute
};

// amp.init_scale, amp.growth_factor, amp.backoff_factor, amp.growth_interval: read only when
// `enabled` (fp16), so that setting them for another precision is reported as unused.
amp::GradScalerOptions read_grad_scaler_options(const Config& config, bool enabled);

// Turns gradient communication off for one micro-step unless it is the last (the reducer's
// no_sync); restores the previous setting when it goes out of scope.
class MicroStep {
 public:
  MicroStep(dist::Reducer* reducer, bool sync);
  ~MicroStep();
  MicroStep(const MicroStep&) = delete;
  MicroStep& operator=(const MicroStep&) = delete;

 private:
  dist::Reducer* reducer_;
  bool previous_ = true;
};

class DataParallelOptimizer {
 public:
  using NamedParameters = std::vector<std::pair<std::string, Tensor>>;
  // (prefix under which its state is saved, optimizer); parameters disjoint, together `params`.
  using PlainOptimizers = std::vector<std::pair<std::string, std::unique_ptr<optim::Optimizer>>>;

  // Plain data parallelism over the job's optimizers. Collective when dp is running.
  DataParallelOptimizer(DataParallel& dp, NamedParameters params, PlainOptimizers optimizers,
                        DpOptimizerOptions options);
  // ZeRO-1 AdamW (zero.weight_decay_mask: one entry per parameter). Collective.
  DataParallelOptimizer(DataParallel& dp, NamedParameters params, dist::ZeroOptions zero, DpOptimizerOptions options);
  ~DataParallelOptimizer();

  bool zero() const { return zero_ != nullptr; }
  void set_lr(double lr);
  void zero_grad();
  // See the top of this file; `micro` counts from 0 to `count` - 1. Returned by value (C++17
  // guaranteed elision): keep it alive for the micro-step's backward.
  MicroStep micro_step(int64_t micro, int64_t count) { return MicroStep(reducer_.get(), micro + 1 == count); }
  // loss * loss_scale (fp16), else the loss.
  Tensor scale(const Tensor& loss) const { return scaler_.scale(loss); }
  // Reduce, unscale, clip, update; false when the step was skipped (overflow on some rank).
  bool step();
  // GANs: a network whose gradients are not wanted this step does no communication.
  void set_sync(bool on);

  const Tensor& grad_norm() const { return grad_norm_; }
  const amp::GradScaler& scaler() const { return scaler_; }
  amp::GradScaler& scaler() { return scaler_; }
  const NamedParameters& parameters() const { return params_; }
  dist::Reducer* reducer() const { return reducer_.get(); }
  dist::ZeroAdamW* zero_optimizer() const { return zero_.get(); }
  const PlainOptimizers& plain_optimizers() const { return optimizers_; }

 private:
  DataParallel& dp_;
  NamedParameters params_;
  std::vector<Tensor> tensors_;
  PlainOptimizers optimizers_;
  std::unique_ptr<dist::ZeroAdamW> zero_;
  std::unique_ptr<dist::Reducer> reducer_;
  DpOptimizerOptions options_;
  amp::GradScaler scaler_;
  Tensor grad_norm_;
};

struct NamedOptimizer {
  std::string name;  // file stem ("optimizer") or, for ZeRO, the directory <name>.zero
  DataParallelOptimizer* optimizer;
};

// Collective. Returns the checkpoint directory (on every rank).
std::string save_dp_checkpoint(const DataParallel& dp, const std::string& run_dir, int64_t step,
                               std::vector<CheckpointFile> files, nlohmann::json state, int64_t keep_last,
                               const std::vector<NamedOptimizer>& optimizers);

// Restores the optimizers (and loss scalers) from a checkpoint loaded with load_checkpoint;
// ZeRO state is re-sharded to this world size. Collective for ZeRO optimizers. Errors name the
// checkpoint and what does not match (a plain checkpoint resumed with dist.zero = 1, ...).
void restore_dp_optimizers(const Checkpoint& checkpoint, const std::vector<NamedOptimizer>& optimizers);

}  // namespace tessera::train
