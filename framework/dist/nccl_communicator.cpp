// The NCCL backend of Communicator: device tensors of one GPU.
//
// Setup: rank 0 draws an ncclUniqueId, the MPI communicator broadcasts it, every rank creates a
// NON-BLOCKING NCCL communicator (ncclConfig_t.blocking = 0), whose creation is polled with
// ncclCommGetAsyncError under the collective timeout — and tracked like a collective, so a
// rank that never joins is named.
//
// A collective: record an event on the compute stream and make the communication stream (one
// per communicator, non-blocking) wait for it, so the collective sees every kernel queued
// before; announce the tensors to the caching allocator on the communication stream
// (cuda_record_stream) so their memory is not reused before NCCL is done; enqueue the NCCL call
// between a start and a done event. A non-blocking communicator may return ncclInProgress
// while it enqueues in the background; we poll until it settles (bounded by the timeout).
// Work::wait() makes the compute stream wait for the done event — no host synchronisation.
// The watchdog thread polls the done event and ncclCommGetAsyncError (serialised with the
// issuing thread: two concurrent calls can free the same pending enqueue job); on an error or at the
// deadline it reports, runs ncclCommAbort (registered as an abort hook) and ends the process.
#include "framework/dist/backends.h"

#ifdef TESSERA_WITH_NCCL

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "framework/core/allocator.h"
#include "framework/core/cuda_check.h"
#include "framework/core/cuda_context.h"

namespace tessera::dist {
namespace {

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::f64: return ncclFloat64;
    case DType::f32: return ncclFloat32;
    case DType::bf16: return ncclBfloat16;
    case DType::f16: return ncclFloat16;
    case DType::i64: return ncclInt64;
    case DType::i32: return ncclInt32;
    case DType::u8: return ncclUint8;
  }
  return ncclFloat32;
}

ncclRedOp_t nccl_op(ReduceOp op, bool average) {
  if (average) return ncclAvg;
  return op == ReduceOp::max ? ncclMax : ncclSum;
}

std::string nccl_error_text(ncclComm_t comm, ncclResult_t result) {
  std::string text = detail::cat("NCCL error ", static_cast<int>(result), " (", ncclGetErrorString(result), ")");
  const char* last = ncclGetLastError(comm);
  if (last != nullptr && last[0] != '\0') text += detail::cat(": ", last);
  return text;
}

// Restores the calling thread's current CUDA device on scope exit.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    TESSERA_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) TESSERA_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }

 private:
  int previous_ = 0;
};

class NcclPending : public PendingCollective {
 public:
  NcclPending(CollectiveInfo info, Watchdog* watchdog, ncclComm_t comm, std::shared_ptr<std::mutex> comm_mutex,
              int device, cudaEvent_t start_event, cudaEvent_t done_event, std::vector<Tensor> keep_alive)
      : PendingCollective(std::move(info), watchdog, /*polls_mpi=*/false),
        comm_(comm),
        comm_mutex_(std::move(comm_mutex)),
        device_(device),
        start_event_(start_event),
        done_event_(done_event),
        keep_alive_(std::move(keep_alive)) {}

  ~NcclPending() override {
    cudaEventDestroy(start_event_);
    cudaEventDestroy(done_event_);
  }

  void wait_for_use() override {
    auto compute = static_cast<cudaStream_t>(cuda::compute_stream(device_));
    TESSERA_CUDA_CHECK(cudaStreamWaitEvent(compute, done_event_, 0));
    // The tensors were announced on the communication stream, so dropping them here cannot let
    // the allocator hand their memory out before NCCL is done with it.
    finish_once();
  }

 protected:
  bool poll(std::string& error) override {
    const cudaError_t query = cudaEventQuery(done_event_);
    if (query == cudaSuccess) return true;
    if (query != cudaErrorNotReady) {
      error = detail::cat("CUDA error while waiting: ", cudaGetErrorString(query));
      return false;
    }
    // ncclCommGetAsyncError completes a non-blocking communicator's pending enqueue job: two
    // threads calling it at once can both complete (and free) the same job. The issuing thread
    // holds the mutex while it settles an enqueue; then this poll skips the error check.
    std::unique_lock<std::mutex> lock(*comm_mutex_, std::try_to_lock);
    if (!lock.owns_lock()) return false;
    ncclResult_t async = ncclSuccess;
    const ncclResult_t rc = ncclCommGetAsyncError(comm_, &async);
    if (rc != ncclSuccess) {
      error = nccl_error_text(comm_, rc);
      return false;
    }
    if (async != ncclSuccess && async != ncclInProgress) error = nccl_error_text(comm_, async);
    return false;
  }

  double measured_seconds() const override {
    float ms = 0.0f;
    if (cudaEventElapsedTime(&ms, start_event_, done_event_) == cudaSuccess) return ms / 1000.0;
    return PendingCollective::measured_seconds();
  }

  void on_finish() override { keep_alive_.clear(); }

 private:
  ncclComm_t comm_;
  std::shared_ptr<std::mutex> comm_mutex_;
  int device_;
  cudaEvent_t start_event_;
  cudaEvent_t done_event_;
  std::vector<Tensor> keep_alive_;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(Device device, Communicator& bootstrap, Watchdog& watchdog, CommStats* stats)
      : Communicator(bootstrap.rank(), bootstrap.world_size(), stats), device_(device), watchdog_(watchdog) {
    TESSERA_CHECK(device.is_cuda(), "NCCL communicator: device ", device.str(), " is not a CUDA device");
    DeviceGuard guard(device.index);
    TESSERA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    barrier_buffer_ = Tensor::zeros({1}, DType::f32, device);

    Tensor id = Tensor::zeros({static_cast<int64_t>(sizeof(ncclUniqueId))}, DType::u8);
    if (rank() == 0) {
      ncclUniqueId unique;
      TESSERA_NCCL_CHECK(ncclGetUniqueId(&unique));
      std::memcpy(id.data_ptr(), &unique, sizeof unique);
    }
    // Labels are compared across ranks (collective mismatch check): nothing rank-specific in them,
    // such as the device (each rank has its own GPU).
    bootstrap.broadcast(id, 0, "nccl unique id").wait();
    ncclUniqueId unique;
    std::memcpy(&unique, id.data_ptr(), sizeof unique);

    CollectiveInfo info;
    {
      std::lock_guard<std::recursive_timed_mutex> lock(watchdog_.mpi_mutex());
      info = watchdog_.enter(CollectiveKind::barrier, "nccl init", DType::u8, 0, 0);
    }
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    const ncclResult_t rc = ncclCommInitRankConfig(&comm_, world_size(), unique, rank(), &config);
    if (rc != ncclSuccess && rc != ncclInProgress) {
      cudaStreamDestroy(stream_);
      TESSERA_NCCL_CHECK(rc);
    }
    abort_hook_ = watchdog_.add_abort_hook([comm = comm_] { ncclCommAbort(comm); });
    settle(info, Clock::now());
  }

  ~NcclCommunicator() override {
    watchdog_.remove_abort_hook(abort_hook_);
    std::lock_guard<std::mutex> lock(*comm_mutex_);
    // ncclCommFinalize flushes outstanding work and is collective; bounded by the timeout, after
    // which the communicator is aborted instead. Destructors report nothing.
    bool finalized = false;
    const ncclResult_t rc = ncclCommFinalize(comm_);
    if (rc == ncclSuccess || rc == ncclInProgress) {
      const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(watchdog_.timeout_s()));
      while (Clock::now() < deadline) {
        ncclResult_t state = ncclSuccess;
        if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) break;
        if (state == ncclSuccess) {
          finalized = true;
          break;
        }
        if (state != ncclInProgress) break;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
    if (finalized) {
      ncclCommDestroy(comm_);
    } else {
      ncclCommAbort(comm_);
    }
    barrier_buffer_ = Tensor();
    cudaStreamDestroy(stream_);
  }

  Device device() const override { return device_; }
  const char* backend() const override { return "nccl"; }

  Work all_reduce(const Tensor& tensor, ReduceOp op, bool average, const std::string& name) override {
    check_tensor("all_reduce", "tensor", tensor);
    check_reduction("all_reduce", tensor, op, average);
    const size_t n = static_cast<size_t>(tensor.numel());
    return issue(CollectiveKind::all_reduce, name, tensor.dtype(), tensor.numel(), static_cast<int64_t>(tensor.nbytes()),
                 {tensor}, [&] {
                   return ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), n, nccl_type(tensor.dtype()),
                                        nccl_op(op, average), comm_, stream_);
                 });
  }

  Work broadcast(const Tensor& tensor, int root, const std::string& name) override {
    check_tensor("broadcast", "tensor", tensor);
    TESSERA_CHECK(root >= 0 && root < world_size(), "broadcast: root ", root, " is not a rank of a world of ",
                  world_size());
    const size_t n = static_cast<size_t>(tensor.numel());
    return issue(CollectiveKind::broadcast, name, tensor.dtype(), tensor.numel(), static_cast<int64_t>(tensor.nbytes()),
                 {tensor}, [&] {
                   return ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), n, nccl_type(tensor.dtype()), root,
                                        comm_, stream_);
                 });
  }

  Work all_gather(const Tensor& output, const Tensor& input, const std::string& name) override {
    check_all_gather(output, input);
    const size_t n = static_cast<size_t>(input.numel());
    return issue(CollectiveKind::all_gather, name, input.dtype(), input.numel(), static_cast<int64_t>(output.nbytes()),
                 {output, input}, [&] {
                   return ncclAllGather(input.data_ptr(), output.data_ptr(), n, nccl_type(input.dtype()), comm_,
                                        stream_);
                 });
  }

  Work reduce_scatter(const Tensor& output, const Tensor& input, ReduceOp op, bool average,
                      const std::string& name) override {
    check_reduce_scatter(output, input, op, average);
    const size_t n = static_cast<size_t>(output.numel());
    return issue(CollectiveKind::reduce_scatter, name, input.dtype(), output.numel(),
                 static_cast<int64_t>(input.nbytes()), {output, input}, [&] {
                   return ncclReduceScatter(input.data_ptr(), output.data_ptr(), n, nccl_type(input.dtype()),
                                            nccl_op(op, average), comm_, stream_);
                 });
  }

  Work barrier(const std::string& name) override {
    return issue(CollectiveKind::barrier, name, DType::u8, 0, 0, {barrier_buffer_}, [&] {
      return ncclAllReduce(barrier_buffer_.data_ptr(), barrier_buffer_.data_ptr(), 1, ncclFloat32, ncclSum, comm_,
                           stream_);
    });
  }

 private:
  // Polls a non-blocking communicator until its pending operation has been enqueued (or created).
  void settle(const CollectiveInfo& info, Clock::time_point start) {
    const auto deadline =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(watchdog_.timeout_s()));
    while (true) {
      ncclResult_t state = ncclSuccess;
      const ncclResult_t rc = ncclCommGetAsyncError(comm_, &state);
      if (rc != ncclSuccess) watchdog_.fail(info, 0.0, nccl_error_text(comm_, rc));
      if (state == ncclSuccess) return;
      const auto now = Clock::now();
      if (state != ncclInProgress)
        watchdog_.fail(info, std::chrono::duration<double>(now - start).count(), nccl_error_text(comm_, state));
      if (now >= deadline) watchdog_.fail(info, watchdog_.timeout_s(), "");
      // An enqueue settles within microseconds: yield for the first millisecond, then sleep (a
      // sleep of 50 us or more per collective adds up over a step's buckets).
      if (now - start < std::chrono::milliseconds(1)) std::this_thread::yield();
      else std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  Work issue(CollectiveKind kind, const std::string& name, DType dtype, int64_t count, int64_t bytes,
             std::vector<Tensor> tensors, const std::function<ncclResult_t()>& call) {
    std::lock_guard<std::mutex> lock(*comm_mutex_);
    CollectiveInfo info;
    {
      std::lock_guard<std::recursive_timed_mutex> mpi_lock(watchdog_.mpi_mutex());
      info = watchdog_.enter(kind, name, dtype, count, bytes);
    }
    const auto start = Clock::now();
    DeviceGuard guard(device_.index);
    auto compute = static_cast<cudaStream_t>(cuda::compute_stream(device_.index));
    cudaEvent_t ready = nullptr, start_event = nullptr, done_event = nullptr;
    TESSERA_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    TESSERA_CUDA_CHECK(cudaEventRecord(ready, compute));
    TESSERA_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready, 0));
    TESSERA_CUDA_CHECK(cudaEventDestroy(ready));
    for (const Tensor& t : tensors) cuda_record_stream(t.storage()->data(), stream_);
    TESSERA_CUDA_CHECK(cudaEventCreate(&start_event));
    TESSERA_CUDA_CHECK(cudaEventCreate(&done_event));
    TESSERA_CUDA_CHECK(cudaEventRecord(start_event, stream_));
    const ncclResult_t rc = call();
    if (rc != ncclSuccess && rc != ncclInProgress) watchdog_.fail(info, 0.0, nccl_error_text(comm_, rc));
    if (rc == ncclInProgress) settle(info, start);
    TESSERA_CUDA_CHECK(cudaEventRecord(done_event, stream_));
    auto op = std::make_shared<NcclPending>(info, &watchdog_, comm_, comm_mutex_, device_.index, start_event,
                                            done_event, std::move(tensors));
    watchdog_.track(op);
    return Work(op);
  }

  Device device_;
  Watchdog& watchdog_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  Tensor barrier_buffer_;
  int abort_hook_ = -1;
  // Serialises the calls on comm_: issuing (and settling) collectives here, the watchdog
  // thread's error polls in NcclPending.
  std::shared_ptr<std::mutex> comm_mutex_ = std::make_shared<std::mutex>();
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Device device, Communicator& bootstrap, Watchdog& watchdog,
                                                     CommStats* stats) {
  return std::make_unique<NcclCommunicator>(device, bootstrap, watchdog, stats);
}

}  // namespace tessera::dist

#else  // no NCCL in this build

#include "framework/core/error.h"

namespace tessera::dist {

std::unique_ptr<Communicator> make_nccl_communicator(Device device, Communicator&, Watchdog&, CommStats*) {
  detail::throw_error(detail::cat("collectives on ", device.str(), " need NCCL, but this build has ",
                                  cuda_compiled() ? "no NCCL (install NCCL 2 next to CUDA and re-run cmake)"
                                                  : "no CUDA backend"));
}

}  // namespace tessera::dist

#endif
