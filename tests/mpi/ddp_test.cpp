// The data-parallel reducer against a single-rank reference that every rank computes itself on
// the whole global batch: N ranks with micro-batch b must give what one rank gives with N*b.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "framework/dist/ddp.h"
#include "framework/dist/process_group.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/optim/clip.h"
#include "framework/optim/sgd.h"
#include "tests/mpi/test_models.h"

namespace tessera::mpitest {
namespace {

constexpr int64_t kIn = 6, kHidden = 16, kOut = 3, kMicro = 4;

dist::Communicator& comm() { return dist::ProcessGroup::get().communicator(test_device()); }

std::vector<Tensor> trainable(const nn::Module& m) {
  std::vector<Tensor> out;
  for (const auto& [name, t] : m.named_parameters())
    if (t.requires_grad()) out.push_back(t);
  return out;
}

optim::AdamW make_adamw(const nn::Module& m) {
  optim::AdamWOptions o;
  o.lr = 1e-2;
  o.weight_decay = 0.05;
  return optim::AdamW(trainable(m), o);
}

// Tiny buckets, so a small model spreads over many of them (and some hold only parameters
// that get no gradient on a given step).
dist::DdpOptions small_buckets(DType wire = DType::f32) {
  dist::DdpOptions o;
  o.first_bucket_mb = 64.0 / (1024 * 1024);   // 64 bytes
  o.bucket_mb = 256.0 / (1024 * 1024);        // 256 bytes
  o.allreduce_dtype = wire;
  return o;
}

// 10 steps of the MLP: data parallel vs the reference on the full batch, with SGD (sensitive to
// the gradient's scale, so a wrong average shows) and with AdamW.
TEST(DdpTest, RanksWithMicroBatchMatchOneRankWithTheFullBatch) {
  auto& c = comm();
  const int rank = c.rank(), world = c.world_size();
  for (const bool adam : {false, true}) {
    auto model = make_mlp(kIn, kHidden, kOut, rank == 0 ? 1 : 500 + static_cast<uint64_t>(rank));
    auto reference = make_mlp(kIn, kHidden, kOut, 1);
    model->to(test_device());
    reference->to(test_device());
    dist::broadcast_parameters(*model, c);
    dist::Reducer reducer(*model, c, small_buckets());
    ASSERT_GT(reducer.buckets().size(), 2u);
    auto make_optimizer = [&](const nn::Module& m) -> std::unique_ptr<optim::Optimizer> {
      if (adam) return std::make_unique<optim::AdamW>(make_adamw(m));
      optim::SgdOptions o;
      o.lr = 0.1;
      o.momentum = 0.9;
      return std::make_unique<optim::SGD>(trainable(m), o);
    };
    auto opt = make_optimizer(*model);
    auto ref_opt = make_optimizer(*reference);
    for (int64_t step = 0; step < 10; ++step) {
      const Batch global = global_batch(step, kMicro * world, kIn, kOut, test_device());
      const Batch local = rank_slice(global, rank, world);
      mse_loss(model->forward(local.x), local.y).backward();
      reducer.finish();
      opt->step();
      opt->zero_grad();
      mse_loss(reference->forward(global.x), global.y).backward();
      ref_opt->step();
      ref_opt->zero_grad();
    }
    EXPECT_LE(max_relative_difference(flat_parameters(*model), flat_parameters(*reference)), 1e-5)
        << (adam ? "AdamW" : "SGD");
  }
}

// Parameters without gradients (alternating heads, an unused layer, a frozen one), gradient
// clipping, and a bucket layout where whole buckets go without gradients on some steps.
TEST(DdpTest, ParametersWithoutGradientsNeitherHangNorDiverge) {
  auto& c = comm();
  const int rank = c.rank(), world = c.world_size();
  Branchy model(kIn, kHidden, kOut, rank == 0 ? 7 : 900 + static_cast<uint64_t>(rank));
  Branchy reference(kIn, kHidden, kOut, 7);
  model.to(test_device());
  reference.to(test_device());
  dist::broadcast_parameters(model, c);
  dist::Reducer reducer(model, c, small_buckets());
  auto opt = make_adamw(model);
  auto ref_opt = make_adamw(reference);
  int64_t skipped = 0;
  for (int64_t step = 0; step < 10; ++step) {
    const Batch global = global_batch(step, kMicro * world, kIn, kOut, test_device());
    const Batch local = rank_slice(global, rank, world);
    mse_loss(model.forward(local.x, step), local.y).backward();
    reducer.finish();
    skipped += reducer.skipped();
    optim::clip_grad_norm(trainable(model), 0.5);
    opt.step();
    opt.zero_grad();
    mse_loss(reference.forward(global.x, step), global.y).backward();
    optim::clip_grad_norm(trainable(reference), 0.5);
    ref_opt.step();
    ref_opt.zero_grad();
  }
  EXPECT_GT(skipped, 0) << "some bucket should have had no gradient on some step";
  EXPECT_LE(max_relative_difference(flat_parameters(model), flat_parameters(reference)), 1e-5);
  // The unused layer never moved (no gradient, so AdamW's weight decay never touched it).
  Branchy initial(kIn, kHidden, kOut, 7);
  for (const auto& [name, t] : model.named_parameters())
    if (name.rfind("unused.", 0) == 0) {
      for (const auto& [n0, t0] : initial.named_parameters())
        if (n0 == name) {
          EXPECT_EQ(t.to_vector<float>(), t0.to_vector<float>()) << name;
        }
    }
}

TEST(DdpTest, AllRanksHoldBitwiseIdenticalParameters) {
  auto& c = comm();
  const int rank = c.rank(), world = c.world_size();
  auto model = make_mlp(kIn, kHidden, kOut, 3 + static_cast<uint64_t>(rank));
  model->to(test_device());
  dist::broadcast_parameters(*model, c);
  dist::Reducer reducer(*model, c, small_buckets(DType::bf16));
  auto opt = make_adamw(*model);
  for (int64_t step = 0; step < 6; ++step) {
    const Batch local = rank_slice(global_batch(step, kMicro * world, kIn, kOut, test_device()), rank, world);
    mse_loss(model->forward(local.x), local.y).backward();
    reducer.finish();
    opt.step();
    opt.zero_grad();
  }
  const std::vector<float> mine = flat_parameters(*model);
  const auto n = static_cast<int64_t>(mine.size());
  Tensor all = Tensor::zeros({n * world}, DType::f32);
  dist::ProcessGroup::get().host_communicator().all_gather(all, Tensor::from_vector(mine, {n}), "params").wait();
  for (int r = 0; r < world; ++r)
    EXPECT_EQ(std::memcmp(all.data<float>() + r * n, mine.data(), mine.size() * sizeof(float)), 0)
        << "rank " << r << " differs from rank " << rank;
}

TEST(DdpTest, NoSyncAccumulatesLocallyAndTheFinalMicroStepAverages) {
  auto& c = comm();
  const int rank = c.rank(), world = c.world_size();
  auto model = make_mlp(kIn, kHidden, kOut, 11);
  auto reference = make_mlp(kIn, kHidden, kOut, 11);
  model->to(test_device());
  reference->to(test_device());
  dist::Reducer reducer(*model, c, small_buckets());
  const int64_t bytes_before = c.stats().bytes(dist::CollectiveKind::all_reduce);
  // Two micro-steps of kMicro examples per rank: the global batch is 2 * kMicro * world.
  const Batch global = global_batch(0, 2 * kMicro * world, kIn, kOut, test_device());
  const Batch mine = rank_slice(global, rank, world);
  const Batch first = rank_slice(mine, 0, 2), second = rank_slice(mine, 1, 2);
  {
    dist::NoSyncGuard no_sync(reducer);
    (mse_loss(model->forward(first.x), first.y) * 0.5).backward();
    reducer.finish();
  }
  EXPECT_EQ(c.stats().bytes(dist::CollectiveKind::all_reduce), bytes_before) << "no communication inside no_sync";
  (mse_loss(model->forward(second.x), second.y) * 0.5).backward();
  reducer.finish();
  // Reference: the mean over the global batch, in the order the ranks hold it.
  mse_loss(reference->forward(global.x), global.y).backward();
  std::vector<float> got, want;
  for (const Tensor& p : trainable(*model)) {
    const auto v = p.grad().to_vector<float>();
    got.insert(got.end(), v.begin(), v.end());
  }
  for (const Tensor& p : trainable(*reference)) {
    const auto v = p.grad().to_vector<float>();
    want.insert(want.end(), v.begin(), v.end());
  }
  EXPECT_LE(max_relative_difference(got, want), 1e-5);
}

TEST(DdpTest, DisabledReducerDoesNotCommunicate) {
  auto& c = comm();
  auto model = make_mlp(kIn, kHidden, kOut, 5);
  model->to(test_device());
  dist::Reducer reducer(*model, c, small_buckets());
  reducer.set_enabled(false);
  const int64_t before = c.stats().bytes(dist::CollectiveKind::all_reduce);
  const Batch local = global_batch(0, kMicro, kIn, kOut, test_device());
  mse_loss(model->forward(local.x), local.y).backward();
  const std::vector<float> local_grad = trainable(*model)[0].grad().to_vector<float>();
  reducer.finish();
  EXPECT_EQ(c.stats().bytes(dist::CollectiveKind::all_reduce), before);
  EXPECT_EQ(trainable(*model)[0].grad().to_vector<float>(), local_grad) << "gradients untouched";
  reducer.set_enabled(true);
  model->zero_grad();
  mse_loss(model->forward(local.x), local.y).backward();
  reducer.finish();
  EXPECT_GT(c.stats().bytes(dist::CollectiveKind::all_reduce), before);
}

TEST(DdpTest, BucketsLaunchDuringBackwardInReverseRegistrationOrder) {
  auto& c = comm();
  auto model = make_mlp(kIn, kHidden, kOut, 5);
  model->to(test_device());
  dist::Reducer reducer(*model, c, small_buckets());
  const auto buckets = reducer.buckets();
  ASSERT_FALSE(buckets.empty());
  EXPECT_EQ(buckets.front().parameters.front(), "4.bias") << "the last registered parameter comes first";
  EXPECT_EQ(buckets.back().parameters.back(), "0.weight");
  const Batch local = global_batch(0, kMicro, kIn, kOut, test_device());
  mse_loss(model->forward(local.x), local.y).backward();
  reducer.finish();
  EXPECT_EQ(reducer.launched_in_backward(), static_cast<int64_t>(buckets.size()))
      << "every bucket of a model whose parameters all get gradients starts during backward";
}

TEST(DdpTest, SecondBackwardInOneSyncedStepIsAnError) {
  auto& c = comm();
  auto model = make_mlp(kIn, kHidden, kOut, 5);
  model->to(test_device());
  dist::Reducer reducer(*model, c, small_buckets());
  const Batch local = global_batch(0, kMicro, kIn, kOut, test_device());
  mse_loss(model->forward(local.x), local.y).backward();
  EXPECT_THROW(mse_loss(model->forward(local.x), local.y).backward(), Error);
  reducer.finish();
}

// bf16 and fp16 wires: within the rounding of the wire dtype of the exact average, and half the
// bytes of the f32 wire.
void check_low_precision_wire(DType wire) {
  auto& c = comm();
  const int rank = c.rank(), world = c.world_size();
  auto& host = dist::ProcessGroup::get().host_communicator();
  const Batch local = rank_slice(global_batch(3, kMicro * world, kIn, kOut, test_device()), rank, world);

  auto run = [&](DType dtype, std::vector<float>& local_grads, std::vector<float>& averaged) {
    auto model = make_mlp(kIn, kHidden, kOut, 21);
    model->to(test_device());
    dist::Reducer reducer(*model, c, small_buckets(dtype));
    mse_loss(model->forward(local.x), local.y).backward();
    local_grads.clear();
    for (const Tensor& p : trainable(*model)) {
      const auto v = p.grad().to_vector<float>();
      local_grads.insert(local_grads.end(), v.begin(), v.end());
    }
    const int64_t before = c.stats().bytes(dist::CollectiveKind::all_reduce, dtype);
    reducer.finish();
    averaged.clear();
    for (const Tensor& p : trainable(*model)) {
      const auto v = p.grad().to_vector<float>();
      averaged.insert(averaged.end(), v.begin(), v.end());
    }
    return c.stats().bytes(dist::CollectiveKind::all_reduce, dtype) - before;
  };
  std::vector<float> local32, avg32, local16, avg16;
  const int64_t bytes32 = run(DType::f32, local32, avg32);
  const int64_t bytes16 = run(wire, local16, avg16);
  EXPECT_EQ(bytes32, 2 * bytes16);
  ASSERT_EQ(local32, local16);

  // Every rank's local gradients, to compute the exact average and the rounding bound.
  const auto n = static_cast<int64_t>(local32.size());
  Tensor all = Tensor::zeros({n * world}, DType::f32);
  host.all_gather(all, Tensor::from_vector(local32, {n}), "local grads").wait();
  const double unit = wire == DType::bf16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
  int differ = 0;
  for (int64_t i = 0; i < n; ++i) {
    double exact = 0.0, magnitude = 0.0;
    for (int r = 0; r < world; ++r) {
      const double g = all.data<float>()[r * n + i];
      exact += g / world;
      magnitude += std::fabs(g) / world;
    }
    // One rounding of each contribution and of each partial sum: at most 2 * world roundings
    // of at most `unit` times a value bounded by the sum of magnitudes.
    // fp16 gradients this small are subnormal: an absolute error of half the smallest step.
    const double subnormal = wire == DType::f16 ? 2.0 * world * std::ldexp(1.0, -25) : 0.0;
    const double bound = 2.0 * world * unit * magnitude + subnormal + 1e-30;
    ASSERT_LE(std::fabs(avg16[static_cast<size_t>(i)] - exact), bound) << "element " << i;
    ASSERT_LE(std::fabs(avg32[static_cast<size_t>(i)] - exact), 1e-6 * magnitude + 1e-30) << "element " << i;
    differ += avg16[static_cast<size_t>(i)] != avg32[static_cast<size_t>(i)];
  }
  EXPECT_GT(differ, 0) << "the low-precision wire left no trace: was it used?";
}

TEST(DdpTest, Bf16WireIsWithinBf16RoundingAndHalvesTheBytes) { check_low_precision_wire(DType::bf16); }
TEST(DdpTest, Fp16WireIsWithinFp16RoundingAndHalvesTheBytes) { check_low_precision_wire(DType::f16); }

}  // namespace
}  // namespace tessera::mpitest
