// Synchronised batch norm across real ranks: rank r holds rows [r * b, (r + 1) * b) of a
// global batch and must get what one process running plain batch_norm on the whole batch gets
// (each rank computes that reference itself): the output rows, the input-gradient rows, the
// weight and bias gradients summed over the ranks, the running statistics and the batch count;
// second derivatives too; and a conv + BatchNorm2d model trained under the DDP reducer with
// dist::synchronize_batch_norm matches one process with the global batch. At one rank the
// same checks compare the composed op with the fused batch_norm kernel.
#include <gtest/gtest.h>

#include "framework/autograd/engine.h"
#include "framework/dist/ddp.h"
#include "framework/dist/process_group.h"
#include "framework/dist/sync_batch_norm.h"
#include "framework/ops/ops.h"
#include "framework/optim/sgd.h"
#include "tests/mpi/test_models.h"

namespace tessera::mpitest {
namespace {

constexpr int64_t kPerRank = 3, kChannels = 4;

dist::Communicator& comm() { return dist::ProcessGroup::get().communicator(test_device()); }

Tensor draw(const Shape& shape, uint64_t seed, DType dtype, double mean = 0.0, double stdev = 1.0) {
  Generator gen(seed);
  return randn(shape, mean, stdev, DType::f64, Device::cpu(), &gen).to(dtype).to(test_device());
}

Tensor leaf(const Tensor& value) {
  Tensor t = value.clone_data();
  t.set_requires_grad(true);
  return t;
}

Tensor rows_of_rank(const Tensor& global) {
  const int rank = comm().rank();
  return global.slice(0, rank * kPerRank, (rank + 1) * kPerRank).contiguous();
}

// The sum over the ranks of a gradient (weight and bias gradients are per rank).
Tensor summed_over_ranks(const Tensor& t) {
  Tensor out = t.clone_data();
  comm().all_reduce(out, dist::ReduceOp::sum, false, "test: gradient sum").wait();
  return out;
}

ReplicaSum all_ranks() {
  return [](const Tensor& t) { return dist::all_reduce_sum(t, comm(), "test: sync_batch_norm"); };
}

// Running statistics and the batch count of one side of the comparison.
struct Buffers {
  Tensor mean, var, tracked;
  explicit Buffers(Device device)
      : mean(Tensor::zeros({kChannels}, DType::f32, device)),
        var(Tensor::ones({kChannels}, DType::f32, device)),
        tracked(Tensor::zeros({}, DType::i64, device)) {}
};

TEST(SyncBatchNormTest, RanksWithSlicesOfTheBatchMatchOneProcessWithAllOfIt) {
  const int world = comm().world_size();
  const Device device = test_device();
  for (const DType dtype : {DType::f64, DType::f32}) {
    const double tolerance = dtype == DType::f64 ? 1e-12 : 2e-6;  // measured: 1e-15, 3e-7
    const Tensor weight = draw({kChannels}, 1, dtype, 1.0, 0.5), bias = draw({kChannels}, 2, dtype);
    Buffers mine(device), reference(device);
    for (int64_t step = 0; step < 2; ++step) {  // the second step updates non-trivial statistics
      const Tensor x = draw({kPerRank * world, kChannels, 3, 2}, 10 + step, dtype, 0.5, 2.0);
      const Tensor upstream = draw(x.shape(), 20 + step, dtype);

      const Tensor x_ref = leaf(x), w_ref = leaf(weight), b_ref = leaf(bias);
      const Tensor y_ref = batch_norm(x_ref, w_ref, b_ref, reference.mean, reference.var, true, 0.1, 1e-5,
                                      reference.tracked);
      sum(y_ref * upstream).backward();

      const Tensor x_mine = leaf(rows_of_rank(x)), w_mine = leaf(weight), b_mine = leaf(bias);
      const Tensor y = sync_batch_norm(x_mine, w_mine, b_mine, mine.mean, mine.var, 0.1, 1e-5, mine.tracked,
                                       all_ranks());
      sum(y * rows_of_rank(upstream)).backward();

      const char* name = dtype == DType::f64 ? "f64" : "f32";
      EXPECT_EQ(y.dtype(), dtype);
      EXPECT_LE(max_relative_difference(y, rows_of_rank(y_ref)), tolerance) << name << " output, step " << step;
      EXPECT_LE(max_relative_difference(x_mine.grad(), rows_of_rank(x_ref.grad())), tolerance)
          << name << " input gradient, step " << step;
      EXPECT_LE(max_relative_difference(summed_over_ranks(w_mine.grad()), w_ref.grad()), tolerance)
          << name << " weight gradient, step " << step;
      EXPECT_LE(max_relative_difference(summed_over_ranks(b_mine.grad()), b_ref.grad()), tolerance)
          << name << " bias gradient, step " << step;
      EXPECT_LE(max_relative_difference(mine.mean, reference.mean), 1e-6) << name << " running_mean, step " << step;
      EXPECT_LE(max_relative_difference(mine.var, reference.var), 1e-6) << name << " running_var, step " << step;
    }
    EXPECT_EQ(mine.tracked.to_vector<int64_t>()[0], 2);
  }
}

// sum((d/dx sum(y * upstream))^2), differentiated again: the gradient's own all-reduces are
// part of the graph.
TEST(SyncBatchNormTest, SecondDerivativesMatchOneProcess) {
  const int world = comm().world_size();
  const DType dtype = DType::f64;
  const Tensor x = draw({kPerRank * world, kChannels, 2, 2}, 30, dtype, -0.5, 1.5);
  const Tensor upstream = draw(x.shape(), 31, dtype);
  const Tensor weight = draw({kChannels}, 32, dtype, 1.0, 0.5), bias = draw({kChannels}, 33, dtype);

  auto second = [](const Tensor& y, const Tensor& up, const Tensor& xv, const Tensor& w) {
    const Tensor gx = autograd::grad({sum(y * up)}, {xv}, {}, std::nullopt, /*create_graph=*/true)[0];
    return autograd::grad({sum(square(gx))}, {xv, w});
  };
  const Tensor x_ref = leaf(x), w_ref = leaf(weight), b_ref = leaf(bias);
  const auto ref = second(batch_norm(x_ref, w_ref, b_ref, Tensor(), Tensor(), true), upstream, x_ref, w_ref);

  const Tensor x_mine = leaf(rows_of_rank(x)), w_mine = leaf(weight), b_mine = leaf(bias);
  const Tensor y = sync_batch_norm(x_mine, w_mine, b_mine, Tensor(), Tensor(), 0.1, 1e-5, Tensor(), all_ranks());
  const auto mine = second(y, rows_of_rank(upstream), x_mine, w_mine);
  EXPECT_LE(max_relative_difference(mine[0], rows_of_rank(ref[0])), 1e-12) << "d/dx";
  EXPECT_LE(max_relative_difference(summed_over_ranks(mine[1]), ref[1]), 1e-12) << "d/dweight";
}

// conv -> BatchNorm2d -> ReLU -> conv (stride 2) -> BatchNorm2d -> flatten -> linear
std::shared_ptr<nn::Sequential> make_conv_bn(uint64_t seed) {
  Generator gen(seed);
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Conv2d>(2, kChannels, nn::Conv2dSettings{.kernel = 3, .padding = 1, .bias = false},
                                        &gen));
  net->add(std::make_shared<nn::BatchNorm2d>(kChannels));
  net->add(std::make_shared<nn::Activation>("relu"));
  net->add(std::make_shared<nn::Conv2d>(
      kChannels, kChannels, nn::Conv2dSettings{.kernel = 3, .stride = 2, .padding = 1, .bias = false}, &gen));
  net->add(std::make_shared<nn::BatchNorm2d>(kChannels));
  net->add(std::make_shared<nn::Flatten>());
  net->add(std::make_shared<nn::Linear>(kChannels * 2 * 2, 3, true, &gen));
  return net;
}

// The batch-norm all-reduces (forward and backward) interleave with the reducer's bucket
// all-reduces started from grad-ready hooks; every rank must issue them in the same order.
TEST(SyncBatchNormTest, ModelUnderDdpMatchesOneProcessWithTheGlobalBatch) {
  auto& c = comm();
  const int rank = c.rank(), world = c.world_size();
  auto model = make_conv_bn(rank == 0 ? 5 : 700 + static_cast<uint64_t>(rank));
  auto reference = make_conv_bn(5);
  model->to(test_device());
  reference->to(test_device());
  dist::broadcast_parameters(*model, c);
  EXPECT_EQ(dist::synchronize_batch_norm(*model, c), world > 1 ? 2 : 0);
  dist::DdpOptions buckets;
  buckets.first_bucket_mb = buckets.bucket_mb = 256.0 / (1024 * 1024);  // several buckets
  dist::Reducer reducer(*model, c, buckets);
  optim::SgdOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  optim::SGD opt(model->parameters(), o), ref_opt(reference->parameters(), o);
  for (int64_t step = 0; step < 4; ++step) {
    Batch global = global_batch(step, kPerRank * world, 2 * 4 * 4, 3, test_device());
    global.x = global.x.reshape({kPerRank * world, 2, 4, 4});
    const Batch local = rank_slice(global, rank, world);
    mse_loss(model->forward(local.x), local.y).backward();
    reducer.finish();
    opt.step();
    opt.zero_grad();
    mse_loss(reference->forward(global.x), global.y).backward();
    ref_opt.step();
    ref_opt.zero_grad();
  }
  EXPECT_LE(max_relative_difference(flat_parameters(*model), flat_parameters(*reference)), 1e-5);
  EXPECT_LE(max_relative_difference(flat_buffers(*model), flat_buffers(*reference)), 1e-5);
}

}  // namespace
}  // namespace tessera::mpitest
