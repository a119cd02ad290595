// DataParallelOptimizer and data-parallel checkpoints (dp_optimizer.h).
#include "framework/train/dp_optimizer.h"

#include <filesystem>

#include "framework/core/error.h"
#include "framework/optim/clip.h"
#include "framework/train/zero_checkpoint.h"

namespace tessera::train {
namespace {

namespace fs = std::filesystem;

amp::FlagReducer flag_reducer(const DataParallel& dp) {
  return dp.communicator() != nullptr ? dist::max_flag_reducer(*dp.communicator()) : amp::FlagReducer{};
}

std::vector<Tensor> tensors_of(const DataParallelOptimizer::NamedParameters& params) {
  std::vector<Tensor> out;
  for (const auto& [name, t] : params) out.push_back(t);
  return out;
}

nn::StateDict with_prefix(const std::string& prefix, const nn::StateDict& state) {
  nn::StateDict out;
  for (const auto& [key, t] : state)
    if (key.rfind(prefix, 0) == 0) out.emplace_back(key.substr(prefix.size()), t);
  return out;
}

}  // namespace

amp::GradScalerOptions read_grad_scaler_options(const Config& c, bool enabled) {
  amp::GradScalerOptions o;
  o.enabled = enabled;
  if (!enabled) return o;
  o.init_scale = c.get_double("amp.init_scale", o.init_scale);
  o.growth_factor = c.get_double("amp.growth_factor", o.growth_factor);
  o.backoff_factor = c.get_double("amp.backoff_factor", o.backoff_factor);
  o.growth_interval = c.get_int("amp.growth_interval", o.growth_interval);
  return o;
}

// Only a non-final micro-step touches the reducer: restoring the setting after the final one
// would change it while its buckets are in flight (finish() comes later, in step()).
MicroStep::MicroStep(dist::Reducer* reducer, bool sync) : reducer_(sync ? nullptr : reducer) {
  if (reducer_ == nullptr) return;
  previous_ = reducer_->require_sync();
  reducer_->set_require_sync(false);
}

MicroStep::~MicroStep() {
  if (reducer_ != nullptr) reducer_->set_require_sync(previous_);
}

DataParallelOptimizer::DataParallelOptimizer(DataParallel& dp, NamedParameters params, PlainOptimizers optimizers,
                                             DpOptimizerOptions options)
    : dp_(dp), params_(std::move(params)), tensors_(tensors_of(params_)), optimizers_(std::move(optimizers)),
      options_(options), scaler_(options.scaler, flag_reducer(dp)) {
  TESSERA_CHECK(!optimizers_.empty(), "data-parallel optimizer: no optimizer given");
  size_t covered = 0;
  for (const auto& [prefix, optimizer] : optimizers_) covered += optimizer->params().size();
  TESSERA_ASSERT(covered == params_.size(), "data-parallel optimizer: the optimizers hold ", covered,
                 " parameters, the parameter list ", params_.size());
  if (dp.running()) {
    dist::DdpOptions ddp;
    ddp.first_bucket_mb = dp.settings().first_bucket_mb;
    ddp.bucket_mb = dp.settings().bucket_mb;
    ddp.allreduce_dtype = dp.settings().wire_dtype();
    reducer_ = std::make_unique<dist::Reducer>(params_, *dp.communicator(), ddp);
  }
}

DataParallelOptimizer::DataParallelOptimizer(DataParallel& dp, NamedParameters params, dist::ZeroOptions zero,
                                             DpOptimizerOptions options)
    : dp_(dp), params_(std::move(params)), tensors_(tensors_of(params_)), options_(options),
      scaler_(options.scaler, flag_reducer(dp)) {
  TESSERA_CHECK(dp.running(), "dist.zero = 1 needs the process group (it starts even without a launcher)");
  zero.reduce_dtype = dp.settings().wire_dtype();
  zero_ = std::make_unique<dist::ZeroAdamW>(params_, *dp.communicator(), zero);
}

DataParallelOptimizer::~DataParallelOptimizer() = default;

void DataParallelOptimizer::set_lr(double lr) {
  if (zero_) zero_->set_lr(lr);
  for (auto& [prefix, optimizer] : optimizers_) optimizer->set_lr(lr);
}

void DataParallelOptimizer::zero_grad() {
  if (zero_) zero_->zero_grad();
  for (auto& [prefix, optimizer] : optimizers_) optimizer->zero_grad();
}

void DataParallelOptimizer::set_sync(bool on) {
  if (reducer_) reducer_->set_enabled(on);
}

bool DataParallelOptimizer::step() {
  if (reducer_) reducer_->finish();  // averaged f32 gradients on every rank
  // fp16: the one host synchronisation of the step (the flag, MAX over ranks).
  const bool found_inf = scaler_.enabled() && scaler_.unscale(tensors_);
  if (!found_inf) {
    if (zero_) {
      zero_->step(options_.max_grad_norm);
      if (options_.max_grad_norm > 0) grad_norm_ = zero_->grad_norm();
    } else {
      if (options_.max_grad_norm > 0) grad_norm_ = optim::clip_grad_norm(tensors_, options_.max_grad_norm);
      for (auto& [prefix, optimizer] : optimizers_) optimizer->step();
    }
  }
  if (scaler_.enabled()) scaler_.update(found_inf);
  return !found_inf;
}

std::string save_dp_checkpoint(const DataParallel& dp, const std::string& run_dir, int64_t step,
                               std::vector<CheckpointFile> files, nlohmann::json state, int64_t keep_last,
                               const std::vector<NamedOptimizer>& optimizers) {
  const fs::path checkpoints = fs::path(run_dir) / "checkpoints";
  std::vector<CheckpointSubdir> subdirs;
  nlohmann::json entries = nlohmann::json::object();
  for (const auto& [name, optimizer] : optimizers) {
    const amp::GradScalerState scaler = optimizer->scaler().state();
    entries[name] = {{"zero", optimizer->zero()},
                     {"world_size", dp.world_size()},
                     {"scaler", {{"scale", scaler.scale},
                                 {"growth_tracker", scaler.growth_tracker},
                                 {"skipped_steps", scaler.skipped_steps}}}};
    if (optimizer->zero()) {
      // Every rank writes its shard next to the checkpoint; rank 0 then moves the directory in.
      const std::string dir = (checkpoints / (checkpoint_dir_name(step) + "." + name + ".zero")).string();
      save_sharded(dir, *optimizer->zero_optimizer(), {{"step", step}});
      subdirs.push_back({name + ".zero", dir});
    } else if (dp.is_root()) {
      nn::StateDict tensors;
      for (const auto& [prefix, plain] : optimizer->plain_optimizers())
        for (auto& [key, t] : plain->state_dict()) tensors.emplace_back(prefix + key, t);
      files.push_back({name, std::move(tensors)});
    }
  }
  state["optimizers"] = entries;
  if (!dp.is_root()) return (checkpoints / checkpoint_dir_name(step)).string();
  return save_checkpoint(run_dir, step, files, state, keep_last, subdirs);
}

void restore_dp_optimizers(const Checkpoint& ckpt, const std::vector<NamedOptimizer>& optimizers) {
  for (const auto& [name, optimizer] : optimizers) {
    // Checkpoints from before data parallelism have no "optimizers" entry: plain, no scaler.
    nlohmann::json entry = nlohmann::json::object();
    if (ckpt.state.contains("optimizers") && ckpt.state["optimizers"].contains(name))
      entry = ckpt.state["optimizers"][name];
    const bool saved_zero = entry.value("zero", false);
    TESSERA_CHECK(saved_zero == optimizer->zero(), "checkpoint ", ckpt.dir, " holds the optimizer state ",
                  saved_zero ? "sharded (dist.zero = 1)" : "whole (dist.zero = 0)",
                  "; resume with --set dist.zero=", saved_zero ? 1 : 0);
    if (optimizer->zero()) {
      load_sharded((fs::path(ckpt.dir) / (name + ".zero")).string(), *optimizer->zero_optimizer());
    } else {
      for (const auto& [prefix, plain] : optimizer->plain_optimizers())
        plain->load_state_dict(with_prefix(prefix, ckpt.file(name)));
    }
    if (entry.contains("scaler") && optimizer->scaler().enabled()) {
      const auto& s = entry["scaler"];
      optimizer->scaler().load_state({s.at("scale").get<double>(), s.at("growth_tracker").get<int64_t>(),
                                      s.at("skipped_steps").get<int64_t>()});
    }
  }
}

}  // namespace tessera::train
