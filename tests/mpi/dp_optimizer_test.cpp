// DataParallelOptimizer (framework/train/dp_optimizer.h) the way a GAN job uses it: two networks,
// each with its own optimizer, trained in alternation, with parameters that get no gradient in a
// step (the other network's, an unused layer, a frozen one), against a single-rank reference
// that every rank computes on the whole global batch.
#include <gtest/gtest.h>

#include "framework/dist/process_group.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/optim/clip.h"
#include "framework/train/dp_optimizer.h"
#include "tests/mpi/test_models.h"

namespace tessera::mpitest {
namespace {

constexpr int64_t kIn = 6, kHidden = 16, kOut = 3, kMicro = 4;

train::DataParallelOptimizer::NamedParameters trainable_named(const nn::Module& m) {
  train::DataParallelOptimizer::NamedParameters out;
  for (const auto& [name, t] : m.named_parameters())
    if (t.requires_grad()) out.emplace_back(name, t);
  return out;
}

std::vector<Tensor> tensors(const train::DataParallelOptimizer::NamedParameters& named) {
  std::vector<Tensor> out;
  for (const auto& [name, t] : named) out.push_back(t);
  return out;
}

constexpr double kLr = 1e-2, kDecay = 0.05, kClip = 0.5;

std::unique_ptr<train::DataParallelOptimizer> make(train::DataParallel& dp, const nn::Module& m, bool zero) {
  const train::DpOptimizerOptions options{.max_grad_norm = kClip, .scaler = {.enabled = false}};
  if (zero) return std::make_unique<train::DataParallelOptimizer>(
      dp, trainable_named(m), dist::ZeroOptions{.lr = kLr, .weight_decay = kDecay}, options);
  train::DataParallelOptimizer::PlainOptimizers plain;
  plain.emplace_back("", std::make_unique<optim::AdamW>(tensors(trainable_named(m)),
                                                          optim::AdamWOptions{.lr = kLr, .weight_decay = kDecay}));
  return std::make_unique<train::DataParallelOptimizer>(dp, trainable_named(m), std::move(plain), options);
}

// "Generator" g (Branchy: alternating heads, an unused and a frozen layer) and "critic" c (an
// MLP). Even steps train g through c (c's gradients are computed but not wanted: its sync is
// off and it does not step); odd steps train c on g's detached output (g gets no gradient).
void run_alternation(bool zero) {
  train::DistSettings settings;
  settings.timeout_s = 120;
  settings.first_bucket_mb = 64.0 / (1 << 20);  // tiny buckets: many, some without gradients
  settings.bucket_mb = 256.0 / (1 << 20);
  train::DataParallel dp(settings, test_device());
  ASSERT_TRUE(dp.running());
  const int rank = dp.rank(), world = dp.world_size();

  Branchy g(kIn, kHidden, kIn, rank == 0 ? 3 : 300 + static_cast<uint64_t>(rank));
  auto c = make_mlp(kIn, kHidden, kOut, rank == 0 ? 4 : 400 + static_cast<uint64_t>(rank));
  Branchy g_ref(kIn, kHidden, kIn, 3);
  auto c_ref = make_mlp(kIn, kHidden, kOut, 4);
  for (nn::Module* m : std::initializer_list<nn::Module*>{&g, c.get(), &g_ref, c_ref.get()}) m->to(test_device());
  dp.broadcast_parameters(g);
  dp.broadcast_parameters(*c);
  auto g_opt = make(dp, g, zero);
  auto c_opt = make(dp, *c, zero);
  optim::AdamW g_ref_opt(tensors(trainable_named(g_ref)), {.lr = kLr, .weight_decay = kDecay});
  optim::AdamW c_ref_opt(tensors(trainable_named(*c_ref)), {.lr = kLr, .weight_decay = kDecay});

  for (int64_t step = 0; step < 10; ++step) {
    const Batch global = global_batch(step, kMicro * world, kIn, kOut, test_device());
    const Batch local = rank_slice(global, rank, world);
    const bool train_g = step % 2 == 0;
    g_opt->set_sync(train_g);
    c_opt->set_sync(!train_g);
    g_opt->zero_grad();
    c_opt->zero_grad();
    g_ref_opt.zero_grad();
    c_ref_opt.zero_grad();
    if (train_g) {
      mse_loss(c->forward(g.forward(local.x, step)), local.y).backward();
      ASSERT_TRUE(g_opt->step());
      mse_loss(c_ref->forward(g_ref.forward(global.x, step)), global.y).backward();
      optim::clip_grad_norm(tensors(trainable_named(g_ref)), kClip);
      g_ref_opt.step();
    } else {
      mse_loss(c->forward(g.forward(local.x, step).detach()), local.y).backward();
      ASSERT_TRUE(c_opt->step());
      mse_loss(c_ref->forward(g_ref.forward(global.x, step).detach()), global.y).backward();
      optim::clip_grad_norm(tensors(trainable_named(*c_ref)), kClip);
      c_ref_opt.step();
    }
  }
  EXPECT_LE(max_relative_difference(flat_parameters(g), flat_parameters(g_ref)), 1e-5) << (zero ? "ZeRO" : "plain");
  EXPECT_LE(max_relative_difference(flat_parameters(*c), flat_parameters(*c_ref)), 1e-5) << (zero ? "ZeRO" : "plain");
  EXPECT_NO_THROW(dp.check_identical(g));
  EXPECT_NO_THROW(dp.check_identical(*c));
}

TEST(DataParallelOptimizerTest, TwoNetworksInAlternationMatchOneRankWithTheFullBatch) { run_alternation(false); }

TEST(DataParallelOptimizerTest, TwoZeroOptimizersInAlternationMatchOneRankWithTheFullBatch) { run_alternation(true); }

// A host sum and rank 0's decision reach every rank; different parameters are named.
TEST(DataParallelOptimizerTest, HostCollectivesAndTheIdenticalParameterCheck) {
  train::DistSettings settings;
  settings.timeout_s = 120;
  train::DataParallel dp(settings, test_device());
  const int rank = dp.rank(), world = dp.world_size();
  std::vector<double> values = {1.0, static_cast<double>(rank)};
  dp.sum(values);
  EXPECT_EQ(values[0], world);
  EXPECT_EQ(values[1], world * (world - 1) / 2);
  EXPECT_EQ(dp.root_decides(rank == 0), true);
  auto model = make_mlp(kIn, kHidden, kOut, 1 + static_cast<uint64_t>(rank));
  model->to(dp.device());
  if (world > 1) {
    try {
      dp.check_identical(*model);
      ADD_FAILURE() << "different parameters passed the check";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("rank(s) 1"), std::string::npos) << e.what();
    }
  }
  dp.broadcast_parameters(*model);
  EXPECT_NO_THROW(dp.check_identical(*model));
}

}  // namespace
}  // namespace tessera::mpitest
