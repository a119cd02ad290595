// tessera_mpi_fault: data-parallel training in which one rank dies or stalls at a chosen step;
// driven by fault.sh, which checks that the whole job ends non-zero within the timeout and
// names the rank.
//
//   tessera_mpi_fault MODE RANK STEP TIMEOUT_S
//     MODE kill  — RANK sends itself SIGKILL at STEP (kill -9)
//     MODE stop  — RANK sends itself SIGSTOP at STEP (a stalled rank: alive but silent)
//     MODE none  — no fault (the job must finish and exit 0)
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "framework/dist/ddp.h"
#include "framework/dist/process_group.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "tests/mpi/test_models.h"

using namespace tessera;

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s kill|stop|none RANK STEP TIMEOUT_S\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const int fault_rank = std::atoi(argv[2]);
  const int fault_step = std::atoi(argv[3]);
  dist::ProcessGroupOptions options;
  options.timeout_s = std::atof(argv[4]);
  auto& group = dist::ProcessGroup::init(options);
  auto& comm = group.host_communicator();
  const int rank = group.rank(), world = group.world_size();

  auto model = mpitest::make_mlp(8, 32, 4, 1);
  dist::broadcast_parameters(*model, comm);
  dist::DdpOptions ddp;
  ddp.first_bucket_mb = ddp.bucket_mb = 1024.0 / (1024 * 1024);
  dist::Reducer reducer(*model, comm, ddp);
  optim::AdamW opt(model->parameters(), optim::AdamWOptions{});
  const int steps = 4 * fault_step + 20;
  for (int step = 0; step < steps; ++step) {
    if (step == fault_step && rank == fault_rank) {
      std::fprintf(stderr, "rank %d: %s at step %d (pid %d)\n", rank, mode.c_str(), step, static_cast<int>(getpid()));
      std::fflush(stderr);
      if (mode == "kill") kill(getpid(), SIGKILL);
      if (mode == "stop") kill(getpid(), SIGSTOP);
    }
    const auto local = mpitest::rank_slice(mpitest::global_batch(step, 4 * world, 8, 4, Device::cpu()), rank, world);
    mse_loss(model->forward(local.x), local.y).backward();
    reducer.finish();
    opt.step();
    opt.zero_grad();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (rank == 0) std::printf("tessera_mpi_fault: %d steps done on %d rank(s)\n", steps, world);
  dist::ProcessGroup::shutdown();
  return 0;
}
