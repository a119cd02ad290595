// The MPI backend of Communicator: host tensors, non-blocking MPI collectives (MPI_Iallreduce,
// MPI_Ibcast, MPI_Iallgather, MPI_Ireduce_scatter_block, MPI_Ibarrier) on a duplicate of the
// world communicator with MPI_ERRORS_RETURN. Each call enters the watchdog (sequence number,
// arrival messages) and issues the operation under the MPI lock, then hands the request to the
// watchdog, whose thread drives it with MPI_Test while the caller computes. `average` divides
// on the host when the caller waits.
#include <functional>

#include "framework/core/error.h"
#include "framework/dist/backends.h"
#include "framework/dist/mpi_check.h"
#include "kernels/elementwise.h"

namespace tessera::dist {
namespace {

class MpiPending : public PendingCollective {
 public:
  MpiPending(CollectiveInfo info, Watchdog* watchdog, std::vector<Tensor> keep_alive, Tensor average_target,
             int world)
      : PendingCollective(std::move(info), watchdog, /*polls_mpi=*/true),
        keep_alive_(std::move(keep_alive)),
        average_target_(std::move(average_target)),
        world_(world) {}

  MPI_Request request = MPI_REQUEST_NULL;

 protected:
  bool poll(std::string& error) override {
    int flag = 0;
    const int rc = MPI_Test(&request, &flag, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
      error = "MPI error: " + mpi_error_text(rc);
      return false;
    }
    return flag != 0;
  }

  void on_finish() override {
    if (average_target_.defined() && world_ > 1 && average_target_.numel() > 0) {
      kernels::UnaryParams params;
      params.a = 1.0 / world_;
      kernels::unary_cpu(kernels::UnaryOp::affine, average_target_.dtype(), average_target_.data_ptr(),
                         average_target_.data_ptr(), average_target_.numel(), params);
    }
    keep_alive_.clear();
    average_target_ = Tensor();
  }

 private:
  std::vector<Tensor> keep_alive_;
  Tensor average_target_;
  int world_;
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(MPI_Comm world, Watchdog& watchdog, CommStats* stats)
      : Communicator(watchdog.rank(), watchdog.world_size(), stats), watchdog_(watchdog) {
    std::lock_guard<std::recursive_timed_mutex> lock(watchdog_.mpi_mutex());
    TESSERA_MPI_CHECK(MPI_Comm_dup(world, &comm_));
    TESSERA_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  }

  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized || comm_ == MPI_COMM_NULL) return;
    std::lock_guard<std::recursive_timed_mutex> lock(watchdog_.mpi_mutex());
    MPI_Comm_free(&comm_);
  }

  Device device() const override { return Device::cpu(); }
  const char* backend() const override { return "mpi"; }

  Work all_reduce(const Tensor& tensor, ReduceOp op, bool average, const std::string& name) override {
    check_tensor("all_reduce", "tensor", tensor);
    check_reduction("all_reduce", tensor, op, average);
    const int n = static_cast<int>(tensor.numel());
    const MPI_Datatype type = mpi_datatype(tensor.dtype());
    const MPI_Op mpi_op = mpi_reduce_op(op, tensor.dtype());
    return start(CollectiveKind::all_reduce, name, tensor.dtype(), n, static_cast<int64_t>(tensor.nbytes()), {tensor},
                 average ? tensor : Tensor(), [&](MPI_Request* r) {
                   return MPI_Iallreduce(MPI_IN_PLACE, tensor.data_ptr(), n, type, mpi_op, comm_, r);
                 });
  }

  Work broadcast(const Tensor& tensor, int root, const std::string& name) override {
    check_tensor("broadcast", "tensor", tensor);
    TESSERA_CHECK(root >= 0 && root < world_size(), "broadcast: root ", root, " is not a rank of a world of ",
                  world_size());
    const int n = static_cast<int>(tensor.numel());
    const MPI_Datatype type = mpi_datatype(tensor.dtype());
    return start(CollectiveKind::broadcast, name, tensor.dtype(), n, static_cast<int64_t>(tensor.nbytes()), {tensor},
                 Tensor(), [&](MPI_Request* r) { return MPI_Ibcast(tensor.data_ptr(), n, type, root, comm_, r); });
  }

  Work all_gather(const Tensor& output, const Tensor& input, const std::string& name) override {
    check_all_gather(output, input);
    const int n = static_cast<int>(input.numel());
    const MPI_Datatype type = mpi_datatype(input.dtype());
    // The input may be this rank's block of the output (gathering a shard in place).
    const auto* own_block = static_cast<const char*>(output.data_ptr()) +
                            static_cast<size_t>(rank()) * input.nbytes();
    const bool in_place = input.data_ptr() == own_block;
    return start(CollectiveKind::all_gather, name, input.dtype(), n, static_cast<int64_t>(output.nbytes()),
                 {output, input}, Tensor(), [&](MPI_Request* r) {
                   return MPI_Iallgather(in_place ? MPI_IN_PLACE : input.data_ptr(), n, type, output.data_ptr(), n,
                                         type, comm_, r);
                 });
  }

  Work reduce_scatter(const Tensor& output, const Tensor& input, ReduceOp op, bool average,
                      const std::string& name) override {
    check_reduce_scatter(output, input, op, average);
    const int n = static_cast<int>(output.numel());
    const MPI_Datatype type = mpi_datatype(input.dtype());
    const MPI_Op mpi_op = mpi_reduce_op(op, input.dtype());
    return start(CollectiveKind::reduce_scatter, name, input.dtype(), n, static_cast<int64_t>(input.nbytes()),
                 {output, input}, average ? output : Tensor(), [&](MPI_Request* r) {
                   return MPI_Ireduce_scatter_block(input.data_ptr(), output.data_ptr(), n, type, mpi_op, comm_, r);
                 });
  }

  Work barrier(const std::string& name) override {
    return start(CollectiveKind::barrier, name, DType::u8, 0, 0, {}, Tensor(),
                 [&](MPI_Request* r) { return MPI_Ibarrier(comm_, r); });
  }

 private:
  Work start(CollectiveKind kind, const std::string& name, DType dtype, int64_t count, int64_t bytes,
             std::vector<Tensor> keep_alive, Tensor average_target, const std::function<int(MPI_Request*)>& issue) {
    std::shared_ptr<MpiPending> op;
    {
      std::lock_guard<std::recursive_timed_mutex> lock(watchdog_.mpi_mutex());
      CollectiveInfo info = watchdog_.enter(kind, name, dtype, count, bytes);
      op = std::make_shared<MpiPending>(info, &watchdog_, std::move(keep_alive), std::move(average_target),
                                        world_size());
      const int rc = issue(&op->request);
      if (rc != MPI_SUCCESS) watchdog_.fail(info, 0.0, "starting it failed: MPI error: " + mpi_error_text(rc));
    }
    watchdog_.track(op);
    return Work(op);
  }

  Watchdog& watchdog_;
  MPI_Comm comm_ = MPI_COMM_NULL;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm world, Watchdog& watchdog, CommStats* stats) {
  return std::make_unique<MpiCommunicator>(world, watchdog, stats);
}

}  // namespace tessera::dist
