// ProcessGroup (process_group.h): MPI initialisation, ranks, device selection, communicators
// and shutdown.
#include "framework/dist/process_group.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "framework/core/cuda_context.h"
#include "framework/core/error.h"
#include "framework/dist/backends.h"
#include "framework/dist/mpi_check.h"
#include "framework/dist/watchdog.h"

namespace tessera::dist {
namespace {

ProcessGroup* the_group = nullptr;
std::mutex group_mutex;
bool exit_handler_registered = false;

}  // namespace

std::string launcher_from_environment() {
  if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr) return "mpirun";
  if (std::getenv("SLURM_STEP_ID") != nullptr && std::getenv("SLURM_PROCID") != nullptr) return "srun";
  if (std::getenv("PMIX_RANK") != nullptr || std::getenv("PMI_RANK") != nullptr) return "pmix";
  return "none";
}

namespace {

// The thread level to ask MPI for: MULTIPLE, unless TESSERA_MPI_THREAD_LEVEL says otherwise
// (funneled / serialized, to exercise or work around an MPI with weaker thread support).
int requested_thread_level() {
  const char* env = std::getenv("TESSERA_MPI_THREAD_LEVEL");
  const std::string level = env != nullptr ? env : "multiple";
  if (level == "multiple") return MPI_THREAD_MULTIPLE;
  if (level == "serialized") return MPI_THREAD_SERIALIZED;
  if (level == "funneled") return MPI_THREAD_FUNNELED;
  detail::throw_error(detail::cat("TESSERA_MPI_THREAD_LEVEL is \"", level,
                                  "\"; expected multiple, serialized or funneled"));
}

}  // namespace

ProcessGroup& ProcessGroup::init(const ProcessGroupOptions& options) {
  std::lock_guard<std::mutex> lock(group_mutex);
  if (the_group != nullptr) {
    the_group->set_timeout_s(options.timeout_s);
    return *the_group;
  }
  TESSERA_CHECK(options.timeout_s > 0, "dist.timeout_s must be positive, got ", options.timeout_s);
  int initialized = 0, finalized = 0;
  TESSERA_MPI_CHECK(MPI_Initialized(&initialized));
  TESSERA_MPI_CHECK(MPI_Finalized(&finalized));
  TESSERA_CHECK(!finalized, "ProcessGroup::init: MPI has already been finalized in this process");

  auto group = std::unique_ptr<ProcessGroup>(new ProcessGroup);
  if (!initialized) {
    TESSERA_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, requested_thread_level(), &group->thread_level_));
    group->owns_mpi_ = true;
  } else {
    TESSERA_MPI_CHECK(MPI_Query_thread(&group->thread_level_));
  }
  group->launcher_ = launcher_from_environment();

  auto* world = new MPI_Comm(MPI_COMM_NULL);
  group->world_comm_ = world;
  TESSERA_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, world));
  TESSERA_MPI_CHECK(MPI_Comm_set_errhandler(*world, MPI_ERRORS_RETURN));
  TESSERA_MPI_CHECK(MPI_Comm_rank(*world, &group->rank_));
  TESSERA_MPI_CHECK(MPI_Comm_size(*world, &group->world_));
  MPI_Comm local = MPI_COMM_NULL;
  TESSERA_MPI_CHECK(MPI_Comm_split_type(*world, MPI_COMM_TYPE_SHARED, group->rank_, MPI_INFO_NULL, &local));
  TESSERA_MPI_CHECK(MPI_Comm_rank(local, &group->local_rank_));
  TESSERA_MPI_CHECK(MPI_Comm_size(local, &group->local_world_));
  TESSERA_MPI_CHECK(MPI_Comm_free(&local));
  create_mpi_types();

  group->stats_ = std::make_unique<CommStats>();
  group->watchdog_ = std::make_unique<Watchdog>(*world, options.timeout_s,
                                                group->thread_level_ >= MPI_THREAD_SERIALIZED, group->stats_.get());
  group->mpi_ = make_mpi_communicator(*world, *group->watchdog_, group->stats_.get());

  if (!exit_handler_registered) {
    exit_handler_registered = true;
    std::atexit([] {
      std::lock_guard<std::mutex> lock(group_mutex);
      if (the_group == nullptr) return;
      the_group->teardown(/*destroy_nccl=*/false);
      the_group = nullptr;  // leaked on purpose: its members may refer to unloaded libraries
    });
  }
  the_group = group.release();
  return *the_group;
}

bool ProcessGroup::initialized() {
  std::lock_guard<std::mutex> lock(group_mutex);
  return the_group != nullptr;
}

ProcessGroup& ProcessGroup::get() {
  std::lock_guard<std::mutex> lock(group_mutex);
  TESSERA_CHECK(the_group != nullptr, "the process group is not initialised: call dist::ProcessGroup::init() first");
  return *the_group;
}

void ProcessGroup::shutdown() {
  std::lock_guard<std::mutex> lock(group_mutex);
  if (the_group == nullptr) return;
  the_group->teardown(/*destroy_nccl=*/true);
  delete the_group;
  the_group = nullptr;
}

void ProcessGroup::teardown(bool destroy_nccl) {
  if (world_comm_ == nullptr) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;  // someone else finalised MPI already: nothing left to release
  if (destroy_nccl) {
    nccl_.clear();
  } else {
    for (auto& [index, communicator] : nccl_) (void)communicator.release();
    nccl_.clear();
  }
  // A final barrier with the timeout: a rank that never gets here is named, not waited for.
  mpi_->barrier("shutdown").wait();
  mpi_.reset();
  watchdog_->shutdown();
  watchdog_.reset();
  auto* world = static_cast<MPI_Comm*>(world_comm_);
  MPI_Comm_free(world);
  delete world;
  world_comm_ = nullptr;
  free_mpi_types();
  if (owns_mpi_) MPI_Finalize();
}

ProcessGroup::~ProcessGroup() = default;

double ProcessGroup::timeout_s() const { return watchdog_->timeout_s(); }

bool ProcessGroup::wait_idle(double seconds) { return watchdog_->wait_idle(seconds); }

void ProcessGroup::set_timeout_s(double seconds) { watchdog_->set_timeout_s(seconds); }

Device ProcessGroup::select_device(Device requested) const {
  if (requested.is_cpu()) return requested;
  const int count = cuda_device_count();
  TESSERA_CHECK(count > 0, "device ", requested.str(), " requested, but rank ", rank_,
                " sees no CUDA device (CUDA build: ", cuda_compiled() ? "yes" : "no", ")");
  // With one GPU visible per task (srun --gpus-per-task=1) count is 1 and every rank uses its
  // only device; otherwise local ranks spread over the node's GPUs.
  const Device device = local_world_ > 1 ? Device::cuda(local_rank_ % count) : requested;
  require_device(device);
  cuda::set_device(device.index);
  return device;
}

Communicator& ProcessGroup::communicator(Device device) {
  if (device.is_cpu()) return *mpi_;
  auto it = nccl_.find(device.index);
  if (it != nccl_.end()) return *it->second;
  require_device(device);
  auto communicator = make_nccl_communicator(device, *mpi_, *watchdog_, stats_.get());
  return *nccl_.emplace(device.index, std::move(communicator)).first->second;
}

void abort_job(int exit_code) {
  std::fflush(stdout);
  std::fflush(stderr);
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  int world = 1;
  if (initialized && !finalized) MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world > 1) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

}  // namespace tessera::dist
