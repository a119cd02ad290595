// Communicator: asynchronous collectives over the ranks of the process group, each with a
// name, a sequence number and a timeout.
//
// defines: tessera::dist::ReduceOp, CollectiveKind, collective_kind_name, Work, Communicator,
//          CommStats, CollectiveRecord, broadcast_parameters, max_flag_reducer
//
// Two backends implement the same interface: MPI for host tensors (mpi_communicator.cpp:
// MPI_Iallreduce & co.; bf16/f16 through user-defined reductions that add in f32) and NCCL for
// device tensors (nccl_communicator.cpp: a non-blocking NCCL communicator bootstrapped over MPI,
// its own communication stream ordered against the compute stream with events). Get them from
// ProcessGroup::communicator(device).
//
// Every call is non-blocking and returns a Work. Tensors are updated in place, must be
// contiguous and must stay untouched until the Work is waited for. `wait()` makes the result
// usable by what comes next: on the host it blocks until the collective is done; for device
// tensors it only makes the compute stream wait for the communication stream (no host
// synchronisation, so a training step stays graph-capturable). `synchronize()` blocks the host
// in both cases. Results (including the division of `average`) are only guaranteed after one
// of them.
//
// No hang, ever: each collective has a deadline (ProcessGroup timeout, `dist.timeout_s`). When it
// passes, the process prints one line naming the collective, its sequence number and the ranks
// that never entered it, aborts NCCL and exits non-zero (see watchdog.h for how the missing
// ranks are found). All ranks must issue the same collectives in the same order; a rank that
// issues a different one is reported as a mismatch, not left to hang.
//
// Byte counts (CommStats) are payload bytes per rank: the tensor for all_reduce and broadcast,
// the gathered output for all_gather, the reduced input for reduce_scatter. The metrics layer
// reads them (allreduce_bytes_total{dtype}) and may install an observer for per-collective
// durations.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "framework/core/tensor.h"
#include "framework/nn/module.h"

namespace tessera::dist {

enum class ReduceOp : uint8_t { sum, max };

enum class CollectiveKind : uint8_t { all_reduce, broadcast, all_gather, reduce_scatter, barrier };
constexpr int kCollectiveKinds = 5;
const char* collective_kind_name(CollectiveKind kind);  // "all_reduce", ...

// One completed collective, as reported to a CommStats observer.
struct CollectiveRecord {
  CollectiveKind kind = CollectiveKind::all_reduce;
  std::string name;
  uint64_t sequence = 0;
  DType dtype = DType::f32;
  int64_t bytes = 0;
  double seconds = 0.0;  // from issue to observed completion (device: between stream events)
};

// Counters shared by every communicator of a process group. Thread-safe.
class CommStats {
 public:
  CommStats();
  int64_t bytes(CollectiveKind kind, DType dtype) const;
  int64_t bytes(CollectiveKind kind) const;  // all dtypes
  int64_t completed(CollectiveKind kind) const;
  double seconds(CollectiveKind kind) const;  // summed durations of completed collectives

  // Called from whichever thread sees a collective complete (the watchdog or a waiter): keep
  // it short and thread-safe. Replaces any previous observer; an empty function removes it.
  void set_observer(std::function<void(const CollectiveRecord&)> observer);

  // Used by the backends.
  void add_issued(CollectiveKind kind, DType dtype, int64_t bytes);
  void add_completed(const CollectiveRecord& record);

 private:
  static constexpr int kDTypes = 7;
  std::atomic<int64_t> bytes_[kCollectiveKinds][kDTypes];
  std::atomic<int64_t> completed_[kCollectiveKinds];
  std::atomic<double> seconds_[kCollectiveKinds];
  std::mutex observer_mutex_;
  std::function<void(const CollectiveRecord&)> observer_;
};

class PendingCollective;  // one in-flight collective (watchdog.h)

class Work {
 public:
  Work() = default;
  explicit Work(std::shared_ptr<PendingCollective> op) : op_(std::move(op)) {}

  bool defined() const { return op_ != nullptr; }
  // Non-blocking: whether the collective has finished (does not apply `average`).
  bool completed() const;
  // Host tensors: blocks until done. Device tensors: orders the compute stream after the
  // collective and returns at once. A collective past its deadline ends the process.
  void wait() const;
  // Blocks the host until done, for either kind of tensor.
  void synchronize() const;
  // Like synchronize(), but gives up after `seconds` and returns false (the collective keeps
  // running and its own deadline still applies).
  bool wait_for(double seconds) const;
  // The collective's sequence number in this process group.
  uint64_t sequence() const;

 private:
  std::shared_ptr<PendingCollective> op_;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  virtual Device device() const = 0;
  virtual const char* backend() const = 0;  // "mpi" or "nccl"
  int rank() const { return rank_; }
  int world_size() const { return world_; }
  CommStats& stats() const { return *stats_; }

  // In place: `tensor` holds this rank's contribution, then the reduction over all ranks.
  // average (floating dtypes only) divides a sum by the world size.
  virtual Work all_reduce(const Tensor& tensor, ReduceOp op = ReduceOp::sum, bool average = false,
                          const std::string& name = "") = 0;
  // In place: every rank receives `root`'s tensor.
  virtual Work broadcast(const Tensor& tensor, int root = 0, const std::string& name = "") = 0;
  // output (world * input.numel() elements, input's dtype) gets rank r's input at
  // [r * n, (r + 1) * n).
  virtual Work all_gather(const Tensor& output, const Tensor& input, const std::string& name = "") = 0;
  // input holds world * output.numel() elements; output gets block `rank` of the reduction.
  virtual Work reduce_scatter(const Tensor& output, const Tensor& input, ReduceOp op = ReduceOp::sum,
                              bool average = false, const std::string& name = "") = 0;
  virtual Work barrier(const std::string& name = "") = 0;

 protected:
  Communicator(int rank, int world, CommStats* stats) : rank_(rank), world_(world), stats_(stats) {}
  // Argument checks shared by the backends; `op` names the call in errors.
  void check_tensor(const char* op, const char* argument, const Tensor& t) const;
  void check_reduction(const char* op, const Tensor& t, ReduceOp reduce, bool average) const;
  // output holds world_size() blocks of input's size (all_gather), or input world_size() blocks
  // of output's size (reduce_scatter); same dtype.
  void check_all_gather(const Tensor& output, const Tensor& input) const;
  void check_reduce_scatter(const Tensor& output, const Tensor& input, ReduceOp op, bool average) const;

 private:
  int rank_;
  int world_;
  CommStats* stats_;
};

// Copies rank `root`'s parameters and buffers into every rank's module (one broadcast per
// dtype, packed flat) and waits. Call before building a Reducer or ZeRO optimizer.
void broadcast_parameters(const nn::Module& module, Communicator& communicator, int root = 0);

// A function for amp::GradScaler: replaces a one-element found-inf flag by its maximum over
// all ranks, so every rank skips the same steps. `communicator` must outlive it.
std::function<void(const Tensor&)> max_flag_reducer(Communicator& communicator);

}  // namespace tessera::dist
