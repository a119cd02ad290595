// Data parallelism for training jobs: the `dist.*` / `metrics.*` config keys and the running
// process group as a job sees it.
//
// defines: tessera::train::DistSettings, read_dist_settings, DataParallel, rank_from_environment
//
// A job reads DistSettings in its constructor (with its other keys, before check_all_used) and
// builds one DataParallel at the start of run(). DataParallel starts the process group
// (framework/dist/process_group.h) when the program was started by a launcher (`mpirun`, `srun`:
// dist::launcher_from_environment) or when dist.zero = 1 needs a communicator even alone (MPI
// singleton); a plain `tessera train` without a launcher runs without MPI at all and every
// method below is then the single-process no-op. With a group, even at world size 1 (mpirun
// -np 1), gradients go through the communicator (NCCL on cuda), so that path stays exercised.
//
// What the job does with it (see dp_optimizer.h for the optimizer side):
//   DataParallel dp(settings.dist, ctx.device);       // collective; picks cuda:local_rank
//   model->to(dp.device()); dp.broadcast_parameters(*model);
//   if (dist.sync_batchnorm) dp.synchronize_batch_norm(*model);   // jobs with batch norm
//   data: rank dp.rank() of dp.world_size() (BatchSampler, LmLoader)
//   JsonlLog(out, dp.is_root()), Progress(..., dp.is_root()); checkpoints via dp_optimizer.h
//   dp.average(values) for logged numbers, dp.sum(values) for evaluation sums (host doubles:
//     only at logging/evaluation steps, where the job reads values back anyway)
//   dp.root_decides(flag): rank 0's decision on every rank (wall-clock limits)
//   dp.check_identical(*model) at the end: every rank must hold the same parameter bytes.
// The destructor shuts the group down (a collective barrier with the timeout) if it started it,
// unless an exception is in flight — then the launcher command aborts the job
// (launchers/commands/train.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "framework/core/device.h"
#include "framework/dist/communicator.h"
#include "framework/nn/module.h"
#include "framework/train/config.h"

namespace tessera::dist {
class ProcessGroup;
}

namespace tessera::train {

struct DistSettings {
  double timeout_s = 300.0;              // dist.timeout_s: deadline of every collective
  std::string allreduce_dtype = "fp32";  // dist.allreduce_dtype: fp32 | bf16 | fp16 (gradient wire)
  double first_bucket_mb = 1.0;          // dist.first_bucket_mb
  double bucket_mb = 25.0;               // dist.bucket_mb
  bool zero = false;                     // dist.zero: ZeRO-1 sharded AdamW instead of Reducer + optimizer
  int64_t metrics_port = 0;              // metrics.port: 0 = off; rank serves on port + local rank
  std::string metrics_address = "0.0.0.0";  // metrics.address
  bool metrics_dump = false;             // metrics.dump: write OUT/metrics/rank<R>.prom at the end
  double peak_tflops = 0.0;              // metrics.peak_tflops: device peak, for mfu (0 = no mfu)

  DType wire_dtype() const;
  // Errors name the key. Call after Config::check_all_used().
  void validate() const;
};

// Reads every dist.* and metrics.* key (no validation; see DistSettings::validate).
DistSettings read_dist_settings(const Config& config);

// This process's rank as the launcher's environment states it (OMPI_COMM_WORLD_RANK,
// SLURM_PROCID under srun, PMIX_RANK, PMI_RANK), 0 without a launcher. For work before MPI
// starts (only rank 0 writes OUT/config.toml).
int rank_from_environment();

class DataParallel {
 public:
  // Collective when a launcher started the job. `requested` is the job's device; on cuda each
  // rank takes cuda:(local rank % GPUs).
  DataParallel(const DistSettings& settings, Device requested);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  bool running() const { return group_ != nullptr; }  // a process group (MPI) is up
  int rank() const { return rank_; }
  int world_size() const { return world_; }
  int local_rank() const { return local_rank_; }
  bool is_root() const { return rank_ == 0; }
  Device device() const { return device_; }
  const DistSettings& settings() const { return settings_; }
  // The communicator for device(); null when not running.
  dist::Communicator* communicator() const { return communicator_; }
  // Byte counters and the duration observer of the group; null when not running.
  dist::CommStats* stats() const;

  // Rank 0's parameters and buffers on every rank.
  void broadcast_parameters(const nn::Module& module) const;
  // The same, when it matters: with more than one rank and a module that has buffers (batch-norm
  // running statistics, which per-rank batch norm lets drift apart between ranks). Jobs call it
  // before evaluations, checkpoints and the end-of-run identity check.
  void share_buffers(const nn::Module& module) const;
  // The module's BatchNorm2d layers take their training statistics over the global batch
  // (dist/sync_batch_norm.h; a job's dist.sync_batchnorm). Returns how many layers were
  // switched: 0 without a group or at world size 1, where a rank's batch is the global batch.
  int64_t synchronize_batch_norm(nn::Module& module) const;
  // In place over all ranks (host doubles, the host communicator).
  void sum(std::vector<double>& values) const;
  void average(std::vector<double>& values) const;
  // Rank 0's `flag` on every rank.
  bool root_decides(bool flag) const;
  // A 64-bit FNV-1a hash of the bytes of the module's parameters and buffers; throws on every
  // rank, naming the ranks that differ from rank 0, unless all ranks hold the same bytes.
  uint64_t check_identical(const nn::Module& module) const;

 private:
  DistSettings settings_;
  dist::ProcessGroup* group_ = nullptr;
  dist::Communicator* communicator_ = nullptr;
  bool owns_group_ = false;  // started the group here (then shuts it down)
  int rank_ = 0, world_ = 1, local_rank_ = 0;
  Device device_;
};

}  // namespace tessera::train
