// Small models, data and comparisons shared by the MPI test programs.
//
// defines: tessera::mpitest::test_device, Batch, global_batch, rank_slice, Branchy, make_mlp,
//          flat_parameters, flat_buffers, max_relative_difference, global_mean_loss
//
// Data is synthetic and a function of the step only: every rank builds the whole global batch
// of step k (on the CPU, from a generator seeded by k) and takes its slice, so a run at any
// world size sees the same examples, and a rank can compute the single-rank reference itself.
// TESSERA_TEST_DEVICE=cuda runs the same tests on the GPU (through NCCL).
#pragma once

#include <memory>
#include <vector>

#include "framework/dist/communicator.h"
#include "framework/nn/layers.h"
#include "framework/nn/module.h"

namespace tessera::mpitest {

// cpu, or the rank's GPU when TESSERA_TEST_DEVICE=cuda (ProcessGroup::select_device).
Device test_device();

struct Batch {
  Tensor x, y;
};
Batch global_batch(int64_t step, int64_t examples, int64_t in_features, int64_t out_features, Device device);
Batch rank_slice(const Batch& batch, int rank, int world);

// trunk -> head_a on even steps, head_b on odd steps; `unused` never gets a gradient, `frozen`
// does not require one. So on every step some parameters receive no gradient.
class Branchy : public nn::Module {
 public:
  Branchy(int64_t in, int64_t hidden, int64_t out, uint64_t seed);
  Tensor forward(const Tensor& x, int64_t step);

 private:
  std::shared_ptr<nn::Linear> trunk_, head_a_, head_b_, unused_, frozen_;
};

std::shared_ptr<nn::Sequential> make_mlp(int64_t in, int64_t hidden, int64_t out, uint64_t seed);

// All parameters (buffers), concatenated, as f32 values on the host.
std::vector<float> flat_parameters(const nn::Module& module);
std::vector<float> flat_buffers(const nn::Module& module);
// max |a - b| / max |b| (0 when both are empty; |a - b| when b is all zeros), in double;
// tensors of different shapes: infinity.
double max_relative_difference(const std::vector<double>& a, const std::vector<double>& b);
double max_relative_difference(const std::vector<float>& a, const std::vector<float>& b);
double max_relative_difference(const Tensor& a, const Tensor& b);
// The mean over ranks of each rank's loss (equal micro-batches: the global mean).
double global_mean_loss(const Tensor& local_loss, dist::Communicator& communicator);

}  // namespace tessera::mpitest
