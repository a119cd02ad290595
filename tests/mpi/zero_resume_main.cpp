// tessera_mpi_zero_resume: a ZeRO-1 checkpoint written at one world size, resumed at another.
// Driven by zero_reshard.sh.
//
//   tessera_mpi_zero_resume save DIR     trains 5 steps, saves DIR/zero, then records the loss
//                                        of steps 5 and 6 (after one more step) in DIR/expected.txt
//   tessera_mpi_zero_resume resume DIR   loads DIR/zero into a differently initialised model and
//                                        checks the losses of steps 5 and 6 (1e-6 relative)
// The global batch (12 examples) is the same at every world size; each rank takes its slice.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "framework/dist/process_group.h"
#include "framework/dist/zero.h"
#include "framework/ops/ops.h"
#include "framework/train/zero_checkpoint.h"
#include "tests/mpi/test_models.h"

using namespace tessera;

namespace {

constexpr int64_t kIn = 7, kHidden = 13, kOut = 3, kGlobal = 12;  // divides by 2, 3 and 4

double loss_at(nn::Sequential& model, int64_t step, dist::Communicator& comm, bool backward) {
  const auto local = mpitest::rank_slice(mpitest::global_batch(step, kGlobal, kIn, kOut, comm.device()), comm.rank(),
                                         comm.world_size());
  Tensor loss = mse_loss(model.forward(local.x), local.y);
  if (backward) loss.backward();
  return mpitest::global_mean_loss(loss, comm);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s save|resume DIR\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1], dir = argv[2];
  dist::ProcessGroupOptions options;
  options.timeout_s = 60;
  auto& group = dist::ProcessGroup::init(options);
  auto& comm = group.host_communicator();
  dist::ZeroOptions zo;
  zo.lr = 5e-3;
  int rc = 0;
  try {
    if (mode == "save") {
      auto model = mpitest::make_mlp(kIn, kHidden, kOut, 1);
      dist::ZeroAdamW zero(*model, comm, zo);
      for (int64_t step = 0; step < 5; ++step) {
        loss_at(*model, step, comm, true);
        zero.step(1.0);
        zero.zero_grad();
      }
      train::save_sharded(dir + "/zero", zero, {{"world", comm.world_size()}});
      const double loss5 = loss_at(*model, 5, comm, true);
      zero.step(1.0);
      zero.zero_grad();
      const double loss6 = loss_at(*model, 6, comm, false);
      if (comm.rank() == 0) {
        std::ofstream(dir + "/expected.txt") << std::hexfloat << loss5 << " " << loss6 << "\n";
        std::printf("saved at %d ranks: loss(5) = %.9g, loss(6) = %.9g\n", comm.world_size(), loss5, loss6);
      }
    } else {
      auto model = mpitest::make_mlp(kIn, kHidden, kOut, 12345);
      dist::ZeroAdamW zero(*model, comm, zo);
      const auto metadata = train::load_sharded(dir + "/zero", zero);
      double want5 = 0, want6 = 0;
      std::ifstream in(dir + "/expected.txt");
      std::string a, b;
      in >> a >> b;
      want5 = std::strtod(a.c_str(), nullptr);
      want6 = std::strtod(b.c_str(), nullptr);
      const double loss5 = loss_at(*model, 5, comm, true);
      zero.step(1.0);
      zero.zero_grad();
      const double loss6 = loss_at(*model, 6, comm, false);
      const double err5 = std::fabs(loss5 - want5) / std::fabs(want5);
      const double err6 = std::fabs(loss6 - want6) / std::fabs(want6);
      if (comm.rank() == 0)
        std::printf("resumed at %d ranks from a %d-rank checkpoint: loss(5) = %.9g (rel. error %.2e), "
                    "loss(6) = %.9g (rel. error %.2e)\n",
                    comm.world_size(), metadata.value("world", -1), loss5, err5, loss6, err6);
      if (!(err5 <= 1e-6) || !(err6 <= 1e-6)) {
        std::fprintf(stderr, "rank %d: resumed losses differ by more than 1e-6 relative\n", comm.rank());
        rc = 1;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: error: %s\n", comm.rank(), e.what());
    dist::abort_job(1);
  }
  dist::ProcessGroup::shutdown();
  return rc;
}
