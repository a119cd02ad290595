// Dynamic loss scaling across ranks: an overflow seen by one rank makes every rank skip.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/amp/grad_scaler.h"
#include "framework/dist/ddp.h"
#include "framework/dist/process_group.h"
#include "framework/dist/zero.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "tests/mpi/test_models.h"

namespace tessera::mpitest {
namespace {

constexpr int64_t kIn = 4, kHidden = 8, kOut = 2, kMicro = 4;

dist::Communicator& comm() { return dist::ProcessGroup::get().communicator(test_device()); }

// Sets one gradient element of the first parameter to +inf (the overflow a real fp16 run sees).
void inject_overflow(const nn::Module& model) {
  Tensor g = model.named_parameters().front().second.grad();
  Tensor inf = Tensor::full({1}, INFINITY, g.dtype(), g.device());
  copy_into(g.as_strided({1}, {1}, g.storage_offset()), inf);
}

TEST(GradScalerTest, OverflowOnOneRankMakesEveryRankSkipTheStep) {
  auto& c = comm();
  const int rank = c.rank(), world = c.world_size();
  const int culprit = world - 1;
  auto model = make_mlp(kIn, kHidden, kOut, 71);
  model->to(test_device());
  dist::Reducer reducer(*model, c);
  optim::AdamW opt(model->parameters(), optim::AdamWOptions{});
  amp::GradScalerOptions options;
  options.init_scale = 1024.0;
  options.growth_interval = 2;
  amp::GradScaler scaler(options, dist::max_flag_reducer(c));

  std::vector<bool> stepped;
  for (int64_t step = 0; step < 4; ++step) {
    const Batch local = rank_slice(global_batch(step, kMicro * world, kIn, kOut, test_device()), rank, world);
    scaler.scale(mse_loss(model->forward(local.x), local.y)).backward();
    reducer.finish();
    // After the all-reduce, so only the culprit's flag knows about it.
    if (step == 1 && rank == culprit) inject_overflow(*model);
    const auto before = flat_parameters(*model);
    stepped.push_back(scaler.step(opt));
    opt.zero_grad();
    if (!stepped.back()) {
      EXPECT_EQ(flat_parameters(*model), before) << "a skipped step changed parameters";
    }
  }
  EXPECT_EQ(stepped, (std::vector<bool>{true, false, true, true}));
  EXPECT_EQ(scaler.skipped_steps(), 1);
  // 1024 -> x0.5 on the overflow -> x2 after two clean steps.
  EXPECT_EQ(scaler.loss_scale(), 1024.0);

  // Every rank reached the same decisions and holds the same parameters.
  Tensor s = Tensor::full({1}, scaler.loss_scale() + 1000.0 * scaler.skipped_steps(), DType::f64);
  Tensor hi = s.clone_data();
  auto& host = dist::ProcessGroup::get().host_communicator();
  host.all_reduce(hi, dist::ReduceOp::max, false, "scale check").wait();
  EXPECT_EQ(hi.item(), s.item());
}

TEST(GradScalerTest, ZeroStepIsSkippedOnEveryRankWhenOneRankOverflows) {
  auto& c = comm();
  const int rank = c.rank(), world = c.world_size();
  auto model = make_mlp(kIn, kHidden, kOut, 72);
  model->to(test_device());
  dist::ZeroAdamW zero(*model, c);
  amp::GradScaler scaler(amp::GradScalerOptions{}, dist::max_flag_reducer(c));
  const Batch local = rank_slice(global_batch(0, kMicro * world, kIn, kOut, test_device()), rank, world);
  scaler.scale(mse_loss(model->forward(local.x), local.y)).backward();
  if (rank == 0) inject_overflow(*model);
  const auto before = flat_parameters(*model);
  const bool found = scaler.unscale(model->parameters());
  EXPECT_TRUE(found);
  if (!found) zero.step();
  scaler.update(found);
  EXPECT_EQ(flat_parameters(*model), before);
  EXPECT_EQ(scaler.loss_scale(), 32768.0);
  EXPECT_EQ(zero.steps(), 0);
}

}  // namespace
}  // namespace tessera::mpitest
