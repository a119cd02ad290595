// ProcessGroup: this process's place in the job (rank, world size, node-local rank), read from
// MPI, and the communicators that connect it to the other ranks.
//
// defines: tessera::dist::ProcessGroup, ProcessGroupOptions, abort_job, launcher_from_environment
//
// `ProcessGroup::init()` initialises MPI if nobody has yet (MPI_Init_thread asking for
// MPI_THREAD_MULTIPLE, or the level named by TESSERA_MPI_THREAD_LEVEL=serialized|funneled; see
// watchdog.h for what a lower level changes), so the same binary runs
// with no launcher (world 1), under `mpirun -np N` and under `srun --mpi=pmix`: MPI reads the
// launcher's environment. The node-local rank comes from MPI_Comm_split_type
// (MPI_COMM_TYPE_SHARED), and picks the GPU: a job on `cuda` runs rank r of its node on
// cuda:(r % device_count) (`select_device`). Initialisation is collective: every rank calls it.
//
// `communicator(device)` gives the MPI communicator for `cpu` and an NCCL communicator for
// `cuda:N` (created on first use — a collective call too, so all ranks must make it at the same
// point). The group owns the watchdog (timeouts, see watchdog.h) and the byte counters.
//
// Shutdown: `shutdown()` (collective) destroys the NCCL communicators, passes a final barrier
// with the timeout — so a rank that never gets there is named instead of hanging — and
// finalises MPI if init() initialised it. It also runs at normal process exit (then without
// NCCL teardown, since the CUDA runtime may already be unloading); calling it explicitly at the
// end of training is cleaner. A rank that fails alone should call `abort_job()`: the others are
// stopped at once instead of waiting for their timeout.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "framework/core/device.h"
#include "framework/dist/communicator.h"

namespace tessera::dist {

struct ProcessGroupOptions {
  double timeout_s = 300.0;  // dist.timeout_s: deadline of every collective
};

class Watchdog;

class ProcessGroup {
 public:
  // Initialises MPI (if needed) and the group; later calls return the same group and update
  // the timeout.
  static ProcessGroup& init(const ProcessGroupOptions& options = {});
  static bool initialized();
  // The group; an error if init() has not run.
  static ProcessGroup& get();
  // See the top of this file. Safe to call more than once.
  static void shutdown();

  int rank() const { return rank_; }
  int world_size() const { return world_; }
  int local_rank() const { return local_rank_; }
  int local_world_size() const { return local_world_; }
  bool is_root() const { return rank_ == 0; }
  // "mpirun", "srun", "pmix" or "none" (no launcher), from the environment.
  const std::string& launcher() const { return launcher_; }
  int mpi_thread_level() const { return thread_level_; }  // MPI_THREAD_* provided

  double timeout_s() const;
  void set_timeout_s(double seconds);

  // The device this rank should use for `requested`: cpu stays cpu; cuda becomes
  // cuda:(local_rank % device_count) when several ranks share the node (a single local rank
  // keeps the requested index), and is made the current CUDA device.
  Device select_device(Device requested) const;

  Communicator& communicator(Device device);
  Communicator& host_communicator() { return communicator(Device::cpu()); }
  CommStats& stats() { return *stats_; }
  // Blocks until every collective issued so far, on any communicator of the group, has
  // completed, or until `seconds` pass; returns whether they all did (e.g. before reading the
  // stats: a collective nobody waited on completes whenever the watchdog sees it).
  bool wait_idle(double seconds);

  ~ProcessGroup();

 private:
  ProcessGroup() = default;
  void teardown(bool destroy_nccl);

  int rank_ = 0, world_ = 1, local_rank_ = 0, local_world_ = 1;
  int thread_level_ = 0;
  bool owns_mpi_ = false;
  std::string launcher_;
  void* world_comm_ = nullptr;  // MPI_Comm (a duplicate of MPI_COMM_WORLD), opaque here
  std::unique_ptr<CommStats> stats_;
  std::unique_ptr<Watchdog> watchdog_;
  std::unique_ptr<Communicator> mpi_;
  std::map<int, std::unique_ptr<Communicator>> nccl_;  // by CUDA device index
};

// "mpirun", "srun", "pmix" or "none", from the environment alone (MPI untouched): lets a program
// decide whether to start MPI at all.
std::string launcher_from_environment();

// Ends the whole job now with `exit_code`: MPI_Abort when there are peers (the launcher stops
// them), a plain exit otherwise. For a rank that hit an error the others cannot know about.
[[noreturn]] void abort_job(int exit_code);

}  // namespace tessera::dist
