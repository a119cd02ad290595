// The watchdog: sequence numbers, arrival messages and deadlines for every collective, and the
// one exit path when something goes wrong. Internal to framework/dist.
//
// defines: tessera::dist::CollectiveInfo, PendingCollective, Watchdog, kCollectiveFailureExit
//
// Naming the ranks that did not arrive. Each collective gets the next sequence number s of the
// process group (the same on every rank, since all ranks issue the same collectives in the same
// order). On entering collective s, a rank sends a 64-byte "arrived at s" message (s, kind,
// dtype, element count, name) to every peer on a communicator of its own, and posts a receive
// for each peer's message for s. MPI keeps messages between two ranks in order, so the highest
// s received from a peer tells how far that peer got. When collective s times out, the peers
// whose message for s has not come are exactly the ranks that did not arrive. A message whose
// contents differ from what this rank entered at s is a mismatch (ranks issuing different
// collectives) and is reported at once. This costs 2 (world - 1) tiny messages per collective.
//
// Deadlines and progress. `track()` hands an in-flight collective to the watchdog thread,
// which polls it (MPI_Test for host collectives: the progress engine that lets a bucket's
// all-reduce advance during backward, since Open MPI has no progress thread of its own;
// cudaEventQuery and ncclCommGetAsyncError for NCCL) and checks its deadline. A waiting thread
// polls too and checks the same deadline, so whichever sees it first reports.
//
// MPI thread levels. Every MPI call Tessera makes after init holds `mpi_mutex()`, so calls never
// overlap and MPI_THREAD_SERIALIZED suffices for the watchdog thread to call MPI (we request
// MULTIPLE, which Debian's Open MPI provides). If MPI was initialised with only FUNNELED (or
// SINGLE), the watchdog thread never calls MPI: it only times, host collectives progress while
// the training thread waits for them (no overlap with backward), and a timeout reported by the
// watchdog thread names the missing ranks as of the training thread's last poll.
//
// Failing. `fail()` prints one line to stderr — `tessera: collective all_reduce #57 (bucket 3)
// timed out after 300 s on rank 1: rank(s) 2 did not arrive` — runs the abort hooks (NCCL
// communicators register ncclCommAbort), and leaves with std::_Exit(kCollectiveFailureExit)
// without running exit handlers that could block; mpirun (and srun --kill-on-bad-exit=1) then
// stop the remaining ranks. Files already renamed into place (checkpoints) are untouched.
#pragma once

#include "framework/dist/mpi_check.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "framework/dist/communicator.h"

namespace tessera::dist {

constexpr int kCollectiveFailureExit = 124;

using Clock = std::chrono::steady_clock;

struct CollectiveInfo {
  CollectiveKind kind = CollectiveKind::all_reduce;
  std::string name;
  uint64_t sequence = 0;
  DType dtype = DType::f32;
  int64_t count = 0;
  int64_t bytes = 0;
  // "all_reduce #57 (bucket 3)"
  std::string label() const;
};

class Watchdog;

// One in-flight collective. Backends subclass it with their completion test.
class PendingCollective {
 public:
  PendingCollective(CollectiveInfo info, Watchdog* watchdog, bool polls_mpi);
  virtual ~PendingCollective() = default;
  PendingCollective(const PendingCollective&) = delete;
  PendingCollective& operator=(const PendingCollective&) = delete;

  const CollectiveInfo& info() const { return info_; }
  bool done() const { return done_.load(std::memory_order_acquire); }
  Clock::time_point deadline() const { return deadline_; }
  bool polls_mpi() const { return polls_mpi_; }

  // Polls once (taking the MPI lock when needed); true when complete. An error ends the process.
  bool test();
  // Blocks the host until complete or until `until`; false on reaching `until` first. Passing
  // the collective's deadline ends the process.
  bool host_wait(Clock::time_point until);
  // Work::wait(): default blocks the host; device collectives override to order streams.
  virtual void wait_for_use();
  // Runs after completion, once, on the thread that waited (e.g. the division of `average`).
  void finish_once();

 protected:
  // The backend's completion test. Called with mpi_mutex() held when polls_mpi(). Returns true
  // when complete; sets `error` (and returns false) on a failure.
  virtual bool poll(std::string& error) = 0;
  virtual void on_finish() {}
  // Seconds the collective took, measured when it is seen complete.
  virtual double measured_seconds() const;

  CollectiveInfo info_;
  Watchdog* watchdog_;
  Clock::time_point start_;

 private:
  void mark_done();

  Clock::time_point deadline_;
  bool polls_mpi_;
  std::atomic<bool> done_{false};
  std::atomic<bool> finished_{false};
  std::mutex poll_mutex_;  // serialises polls of non-MPI collectives
  std::mutex finish_mutex_;
  Clock::time_point end_;
};

class Watchdog {
 public:
  // `world` is duplicated for the arrival messages. `thread_may_call_mpi`: MPI provides at
  // least MPI_THREAD_SERIALIZED.
  Watchdog(MPI_Comm world, double timeout_s, bool thread_may_call_mpi, CommStats* stats);
  ~Watchdog();

  int rank() const { return rank_; }
  int world_size() const { return world_; }
  double timeout_s() const { return timeout_s_.load(); }
  void set_timeout_s(double seconds);
  bool thread_may_call_mpi() const { return thread_may_call_mpi_; }
  CommStats& stats() { return *stats_; }

  // Held around every MPI call made by Tessera after init.
  std::recursive_timed_mutex& mpi_mutex() { return mpi_mutex_; }

  // Starts a collective: assigns its sequence number and announces it to every peer. Caller
  // holds mpi_mutex(). Also counts the bytes in the stats.
  CollectiveInfo enter(CollectiveKind kind, const std::string& name, DType dtype, int64_t count, int64_t bytes);
  // Watches `op` until it completes: progress, errors, deadline.
  void track(const std::shared_ptr<PendingCollective>& op);
  // Blocks until every collective tracked so far has completed (and is counted in the stats),
  // or until `seconds` pass; returns whether they all did. Each one's deadline still applies.
  bool wait_idle(double seconds);
  // Receives whatever arrival messages have come. Caller holds mpi_mutex().
  void poll_arrivals();

  // Prints the one-line report and ends the process (see the top of this file). `error` empty
  // means the deadline passed.
  [[noreturn]] void fail(const CollectiveInfo& info, double waited_s, const std::string& error);

  // Functions run by fail() before exiting (NCCL registers ncclCommAbort). Returns an id.
  int add_abort_hook(std::function<void()> hook);
  void remove_abort_hook(int id);

  // Stops the thread and settles the arrival messages; call after a final barrier. Caller
  // must not hold mpi_mutex().
  void shutdown();

 private:
  struct ArrivalMessage {
    uint64_t sequence;
    int64_t count;
    uint8_t kind;
    uint8_t dtype;
    char name[46];
  };
  static_assert(sizeof(ArrivalMessage) == 64, "arrival messages are 64 bytes");

  struct PendingReceive {
    ArrivalMessage expected;
    std::unique_ptr<ArrivalMessage> buffer;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  struct PendingSend {
    std::unique_ptr<ArrivalMessage> message;
    std::vector<MPI_Request> requests;
  };

  void run();
  std::vector<int> missing_ranks(uint64_t sequence);
  // Receives what has come; returns a description of the first mismatch found (or "").
  std::string receive_arrivals();
  static std::string describe(const ArrivalMessage& m);

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int world_ = 1;
  std::atomic<double> timeout_s_;
  bool thread_may_call_mpi_;
  CommStats* stats_;
  std::thread::id main_thread_;
  std::recursive_timed_mutex mpi_mutex_;

  // Arrival bookkeeping, guarded by mpi_mutex_ (plain reads of arrived_ are only used as a hint
  // when the lock cannot be taken while failing).
  uint64_t next_sequence_ = 1;
  std::vector<std::deque<PendingReceive>> receives_;  // per peer, in sequence order
  std::unique_ptr<std::atomic<uint64_t>[]> arrived_;  // per peer: highest sequence received
  std::deque<PendingSend> sends_;

  // In-flight collectives watched by the thread.
  std::mutex list_mutex_;
  std::condition_variable list_cv_;
  std::vector<std::shared_ptr<PendingCollective>> watched_;
  bool stop_ = false;
  std::thread thread_;

  std::mutex hooks_mutex_;
  std::map<int, std::function<void()>> abort_hooks_;
  int next_hook_ = 0;
  std::atomic<bool> failing_{false};
};

}  // namespace tessera::dist
