// The backend-independent parts of communicator.h: statistics, Work, argument checks,
// broadcast_parameters and the grad-scaler flag reducer.
#include "framework/dist/communicator.h"

#include <algorithm>
#include <climits>
#include <map>

#include "framework/autograd/grad_mode.h"
#include "framework/core/error.h"
#include "framework/dist/watchdog.h"
#include "framework/dist/flat.h"

namespace tessera::dist {

const char* collective_kind_name(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::all_reduce: return "all_reduce";
    case CollectiveKind::broadcast: return "broadcast";
    case CollectiveKind::all_gather: return "all_gather";
    case CollectiveKind::reduce_scatter: return "reduce_scatter";
    case CollectiveKind::barrier: return "barrier";
  }
  return "collective";
}

// ---- CommStats ----

CommStats::CommStats() {
  for (auto& row : bytes_)
    for (auto& b : row) b.store(0);
  for (auto& c : completed_) c.store(0);
  for (auto& s : seconds_) s.store(0.0);
}

int64_t CommStats::bytes(CollectiveKind kind, DType dtype) const {
  return bytes_[static_cast<int>(kind)][static_cast<int>(dtype)].load(std::memory_order_relaxed);
}

int64_t CommStats::bytes(CollectiveKind kind) const {
  int64_t total = 0;
  for (int d = 0; d < kDTypes; ++d) total += bytes_[static_cast<int>(kind)][d].load(std::memory_order_relaxed);
  return total;
}

int64_t CommStats::completed(CollectiveKind kind) const {
  return completed_[static_cast<int>(kind)].load(std::memory_order_relaxed);
}

double CommStats::seconds(CollectiveKind kind) const {
  return seconds_[static_cast<int>(kind)].load(std::memory_order_relaxed);
}

void CommStats::set_observer(std::function<void(const CollectiveRecord&)> observer) {
  std::lock_guard<std::mutex> lock(observer_mutex_);
  observer_ = std::move(observer);
}

void CommStats::add_issued(CollectiveKind kind, DType dtype, int64_t bytes) {
  bytes_[static_cast<int>(kind)][static_cast<int>(dtype)].fetch_add(bytes, std::memory_order_relaxed);
}

void CommStats::add_completed(const CollectiveRecord& record) {
  completed_[static_cast<int>(record.kind)].fetch_add(1, std::memory_order_relaxed);
  seconds_[static_cast<int>(record.kind)].fetch_add(record.seconds, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(observer_mutex_);
  if (observer_) observer_(record);
}

// ---- Work ----

bool Work::completed() const {
  TESSERA_CHECK(op_, "Work::completed: this Work holds no collective");
  return op_->test();
}

void Work::wait() const {
  TESSERA_CHECK(op_, "Work::wait: this Work holds no collective");
  op_->wait_for_use();
}

void Work::synchronize() const {
  TESSERA_CHECK(op_, "Work::synchronize: this Work holds no collective");
  op_->host_wait(Clock::time_point::max());
  op_->finish_once();
}

bool Work::wait_for(double seconds) const {
  TESSERA_CHECK(op_, "Work::wait_for: this Work holds no collective");
  TESSERA_CHECK(seconds >= 0, "Work::wait_for: negative timeout ", seconds);
  const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  if (!op_->host_wait(until)) return false;
  op_->finish_once();
  return true;
}

uint64_t Work::sequence() const {
  TESSERA_CHECK(op_, "Work::sequence: this Work holds no collective");
  return op_->info().sequence;
}

// ---- argument checks ----

void Communicator::check_tensor(const char* op, const char* argument, const Tensor& t) const {
  TESSERA_CHECK(t.defined(), op, ": `", argument, "` is undefined");
  TESSERA_CHECK(t.device() == device(), op, ": `", argument, "` is on ", t.device().str(), " but this ",
                backend(), " communicator serves ", device().str());
  TESSERA_CHECK(t.is_contiguous(), op, ": `", argument, "` of shape ", shape_str(t.shape()),
                " must be contiguous (collectives work on the tensor's memory in place)");
  TESSERA_CHECK(t.numel() <= INT_MAX, op, ": `", argument, "` has ", t.numel(),
                " elements; at most 2^31-1 per collective (split it)");
}

void Communicator::check_reduction(const char* op, const Tensor& t, ReduceOp reduce, bool average) const {
  if (average) {
    TESSERA_CHECK(reduce == ReduceOp::sum, op, ": average applies to a sum, not to max");
    TESSERA_CHECK(is_floating_point(t.dtype()), op, ": average needs a floating-point tensor, got ",
                  dtype_name(t.dtype()));
  }
}

void Communicator::check_all_gather(const Tensor& output, const Tensor& input) const {
  check_tensor("all_gather", "output", output);
  check_tensor("all_gather", "input", input);
  TESSERA_CHECK(output.dtype() == input.dtype(), "all_gather: output is ", dtype_name(output.dtype()),
                " but input is ", dtype_name(input.dtype()));
  TESSERA_CHECK(output.numel() == input.numel() * world_size(), "all_gather: output has ", output.numel(),
                " elements; expected world size ", world_size(), " x input ", input.numel());
}

void Communicator::check_reduce_scatter(const Tensor& output, const Tensor& input, ReduceOp op, bool average) const {
  check_tensor("reduce_scatter", "output", output);
  check_tensor("reduce_scatter", "input", input);
  check_reduction("reduce_scatter", output, op, average);
  TESSERA_CHECK(output.dtype() == input.dtype(), "reduce_scatter: output is ", dtype_name(output.dtype()),
                " but input is ", dtype_name(input.dtype()));
  TESSERA_CHECK(input.numel() == output.numel() * world_size(), "reduce_scatter: input has ", input.numel(),
                " elements; expected world size ", world_size(), " x output ", output.numel());
}

void broadcast_parameters(const nn::Module& module, Communicator& communicator, int root) {
  TESSERA_CHECK(root >= 0 && root < communicator.world_size(), "broadcast_parameters: root ", root,
                " is not a rank of a world of ", communicator.world_size());
  NoGradGuard no_grad;
  std::map<DType, std::vector<std::pair<std::string, Tensor>>> by_dtype;
  auto add = [&](const std::string& name, const Tensor& t) {
    TESSERA_CHECK(t.device() == communicator.device(), "broadcast_parameters: `", name, "` is on ",
                  t.device().str(), " but the communicator serves ", communicator.device().str());
    TESSERA_CHECK(t.is_contiguous(), "broadcast_parameters: `", name, "` of shape ", shape_str(t.shape()),
                  " is not contiguous");
    by_dtype[t.dtype()].emplace_back(name, t);
  };
  for (const auto& [name, t] : module.named_parameters()) add(name, t);
  for (const auto& [name, t] : module.named_buffers()) add(name, t);

  for (auto& [dtype, tensors] : by_dtype) {
    std::vector<kernels::FlatSegment> segments;
    int64_t total = 0;
    for (const auto& [name, t] : tensors) {
      segments.push_back({t.data_ptr(), t.numel(), total});
      total += t.numel();
    }
    if (total == 0) continue;
    Tensor flat = Tensor::empty({total}, dtype, communicator.device());
    if (communicator.rank() == root) pack_segments(dtype, segments, flat);
    communicator.broadcast(flat, root, std::string("parameters ") + dtype_name(dtype)).wait();
    if (communicator.rank() != root) unpack_segments(flat, dtype, segments);
  }
}

std::function<void(const Tensor&)> max_flag_reducer(Communicator& communicator) {
  return [&communicator](const Tensor& flag) {
    TESSERA_CHECK(flag.numel() == 1, "max_flag_reducer: the flag must have one element, got ",
                  shape_str(flag.shape()));
    // A rank without gradients holds its flag on the CPU; the collective needs it on the
    // communicator's device.
    if (flag.device() == communicator.device() && flag.is_contiguous()) {
      communicator.all_reduce(flag, ReduceOp::max, false, "grad_scaler found_inf").wait();
      return;
    }
    Tensor moved = flag.to(communicator.device());
    communicator.all_reduce(moved, ReduceOp::max, false, "grad_scaler found_inf").wait();
    copy_into(flag, moved);
  };
}

}  // namespace tessera::dist
