// ZeRO-1 against plain data parallelism (Reducer + optim::AdamW) on the same data, and the
// sharded checkpoint round trip at the same world size (the re-sharding across world sizes is
// tests/mpi/zero_reshard.sh).
#include <gtest/gtest.h>

#include <filesystem>

#include "framework/dist/ddp.h"
#include "framework/dist/process_group.h"
#include "framework/dist/zero.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/optim/clip.h"
#include "framework/train/zero_checkpoint.h"
#include "tests/mpi/test_models.h"

namespace tessera::mpitest {
namespace {

constexpr int64_t kIn = 5, kHidden = 9, kOut = 3, kMicro = 4;  // odd sizes: the flat space needs padding

dist::Communicator& comm() { return dist::ProcessGroup::get().communicator(test_device()); }

std::vector<Tensor> trainable(const nn::Module& m) {
  std::vector<Tensor> out;
  for (const auto& [name, t] : m.named_parameters())
    if (t.requires_grad()) out.push_back(t);
  return out;
}

dist::ZeroOptions zero_options(DType wire = DType::f32) {
  dist::ZeroOptions o;
  o.lr = 1e-2;
  o.weight_decay = 0.05;
  o.reduce_dtype = wire;
  return o;
}

TEST(ZeroTest, LayoutPadsToTheWorldSizeAndCoversEveryElementOnce) {
  const dist::ZeroLayout layout = dist::make_zero_layout({7, 1, 10}, 3);
  EXPECT_EQ(layout.total, 18);
  EXPECT_EQ(layout.shard % 4, 0);
  EXPECT_EQ(layout.padded, 3 * layout.shard);
  EXPECT_GE(layout.padded, layout.total);
  std::vector<int> hits(18, 0);
  for (int r = 0; r < 3; ++r)
    for (const auto& p : layout.pieces(r))
      for (int64_t k = 0; k < p.numel; ++k) ++hits[static_cast<size_t>(layout.offsets[p.param] + p.param_begin + k)];
  for (int h : hits) EXPECT_EQ(h, 1);
}

// Plain DP and ZeRO-1, both with clipping, on a model where some parameters get no gradient.
TEST(ZeroTest, MatchesPlainDataParallelWithAdamW) {
  auto& c = comm();
  const int rank = c.rank(), world = c.world_size();
  Branchy plain(kIn, kHidden, kOut, 31), sharded(kIn, kHidden, kOut, 31);
  plain.to(test_device());
  sharded.to(test_device());
  dist::DdpOptions ddp;
  ddp.first_bucket_mb = ddp.bucket_mb = 128.0 / (1024 * 1024);
  dist::Reducer reducer(plain, c, ddp);
  optim::AdamWOptions adam;
  adam.lr = 1e-2;
  adam.weight_decay = 0.05;
  optim::AdamW plain_opt(trainable(plain), adam);
  dist::ZeroAdamW zero(sharded, c, zero_options());
  for (int64_t step = 0; step < 8; ++step) {
    const Batch local = rank_slice(global_batch(step, kMicro * world, kIn, kOut, test_device()), rank, world);
    mse_loss(plain.forward(local.x, step), local.y).backward();
    reducer.finish();
    Tensor plain_norm = optim::clip_grad_norm(trainable(plain), 0.3);
    plain_opt.step();
    plain_opt.zero_grad();
    mse_loss(sharded.forward(local.x, step), local.y).backward();
    zero.step(0.3);
    zero.zero_grad();
    EXPECT_NEAR(zero.grad_norm().item(), plain_norm.item(), 1e-6 * plain_norm.item()) << "step " << step;
  }
  EXPECT_LE(max_relative_difference(flat_parameters(sharded), flat_parameters(plain)), 1e-5);
}

TEST(ZeroTest, Bf16ReduceScatterHalvesTheBytesAndStaysClose) {
  auto& c = comm();
  const int rank = c.rank(), world = c.world_size();
  auto a = make_mlp(kIn, kHidden, kOut, 41), b = make_mlp(kIn, kHidden, kOut, 41);
  a->to(test_device());
  b->to(test_device());
  dist::ZeroAdamW zero32(*a, c, zero_options(DType::f32));
  dist::ZeroAdamW zero16(*b, c, zero_options(DType::bf16));
  const auto& stats = c.stats();
  for (int64_t step = 0; step < 3; ++step) {
    const Batch local = rank_slice(global_batch(step, kMicro * world, kIn, kOut, test_device()), rank, world);
    mse_loss(a->forward(local.x), local.y).backward();
    const int64_t f32_before = stats.bytes(dist::CollectiveKind::reduce_scatter, DType::f32);
    zero32.step();
    const int64_t f32_bytes = stats.bytes(dist::CollectiveKind::reduce_scatter, DType::f32) - f32_before;
    mse_loss(b->forward(local.x), local.y).backward();
    const int64_t bf16_before = stats.bytes(dist::CollectiveKind::reduce_scatter, DType::bf16);
    zero16.step();
    const int64_t bf16_bytes = stats.bytes(dist::CollectiveKind::reduce_scatter, DType::bf16) - bf16_before;
    EXPECT_EQ(f32_bytes, 2 * bf16_bytes);
    zero32.zero_grad();
    zero16.zero_grad();
  }
  // Adam normalises the update, so bf16 rounding of the gradients moves parameters by at most a
  // fraction of lr per step: 3 steps of lr 1e-2.
  const auto pa = flat_parameters(*a), pb = flat_parameters(*b);
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_NEAR(pa[i], pb[i], 3 * 2e-2) << i;
}

TEST(ZeroTest, CheckpointRoundTripAtTheSameWorldSize) {
  auto& c = comm();
  const int rank = c.rank(), world = c.world_size();
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("tessera_zero_roundtrip_" + std::to_string(world)))
                              .string();
  auto model = make_mlp(kIn, kHidden, kOut, 51);
  model->to(test_device());
  dist::ZeroAdamW zero(*model, c, zero_options());
  for (int64_t step = 0; step < 3; ++step) {
    const Batch local = rank_slice(global_batch(step, kMicro * world, kIn, kOut, test_device()), rank, world);
    mse_loss(model->forward(local.x), local.y).backward();
    zero.step();
    zero.zero_grad();
  }
  train::save_sharded(dir, zero, {{"note", "round trip"}});
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(dir) / "manifest.json"));
  EXPECT_FALSE(std::filesystem::exists(dir + ".tmp"));

  auto restored = make_mlp(kIn, kHidden, kOut, 999);
  restored->to(test_device());
  dist::ZeroAdamW zero2(*restored, c, zero_options());
  const auto metadata = train::load_sharded(dir, zero2);
  EXPECT_EQ(metadata.value("note", ""), "round trip");
  EXPECT_EQ(zero2.steps(), 3);
  EXPECT_EQ(flat_parameters(*restored), flat_parameters(*model));
  EXPECT_EQ(zero2.exp_avg_sq_shard().to_vector<float>(), zero.exp_avg_sq_shard().to_vector<float>());
  // One more step on both gives the same parameters.
  const Batch local = rank_slice(global_batch(3, kMicro * world, kIn, kOut, test_device()), rank, world);
  mse_loss(model->forward(local.x), local.y).backward();
  zero.step();
  mse_loss(restored->forward(local.x), local.y).backward();
  zero2.step();
  EXPECT_EQ(flat_parameters(*restored), flat_parameters(*model));
  c.barrier("cleanup").synchronize();
  if (rank == 0) std::filesystem::remove_all(dir);
}

TEST(ZeroTest, LoadingAnotherModelsCheckpointNamesTheParameter) {
  auto& c = comm();
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("tessera_zero_mismatch_" + std::to_string(c.world_size())))
                              .string();
  auto model = make_mlp(kIn, kHidden, kOut, 61);
  model->to(test_device());
  dist::ZeroAdamW zero(*model, c, zero_options());
  train::save_sharded(dir, zero);
  auto other = make_mlp(kIn, kHidden + 1, kOut, 61);
  other->to(test_device());
  dist::ZeroAdamW zero_other(*other, c, zero_options());
  try {
    train::load_sharded(dir, zero_other);
    ADD_FAILURE() << "loading a checkpoint of another shape succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("0.weight"), std::string::npos) << e.what();
  }
  c.barrier("cleanup").synchronize();
  if (c.rank() == 0) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tessera::mpitest
