// Language-model batches: shapes, shifted targets, determinism, rank partition, resume, eval.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "framework/core/error.h"
#include "framework/data/lm_loader.h"

namespace tessera::data {
namespace {

// Token i of the shard is i % 1000, so a window's values reveal where it starts.
std::shared_ptr<const TokenShard> counting_shard(int64_t n) {
  std::vector<uint32_t> tokens(n);
  for (int64_t i = 0; i < n; ++i) tokens[i] = static_cast<uint32_t>(i % 1000);
  return std::make_shared<const TokenShard>(TokenShard::from_tokens(std::move(tokens), 1000));
}

LmLoaderOptions options(int64_t batch, int64_t seq, int rank = 0, int world = 1, uint64_t seed = 7) {
  LmLoaderOptions o;
  o.batch_size = batch;
  o.seq_len = seq;
  o.rank = rank;
  o.world_size = world;
  o.seed = seed;
  return o;
}

std::vector<int64_t> values(const Tensor& t) { return t.to_vector<int64_t>(); }

TEST(LmLoaderTest, TargetsAreInputsShiftedByOneAndWindowsHoldExtraTargets) {
  auto shard = counting_shard(997);
  LmLoaderOptions o = options(3, 16);
  o.extra_targets = 2;
  LmLoader loader(shard, o);
  const LmBatch batch = loader.next();
  EXPECT_EQ(batch.inputs.shape(), (Shape{3, 16}));
  EXPECT_EQ(batch.targets.shape(), (Shape{3, 16}));
  EXPECT_EQ(batch.window.shape(), (Shape{3, 19}));
  EXPECT_EQ(batch.inputs.dtype(), DType::i64);
  const auto in = values(batch.inputs), tg = values(batch.targets), win = values(batch.window);
  for (int64_t r = 0; r < 3; ++r) {
    const int64_t start = win[r * 19];
    for (int64_t t = 0; t < 19; ++t) ASSERT_EQ(win[r * 19 + t], (*shard)[start + t]);  // a contiguous window
    for (int64_t t = 0; t < 16; ++t) {
      ASSERT_EQ(in[r * 16 + t], win[r * 19 + t]);
      ASSERT_EQ(tg[r * 16 + t], win[r * 19 + t + 1]);
    }
    EXPECT_LE(start + 19, 997);
  }
}

TEST(LmLoaderTest, SameSeedGivesTheSameBatchesAndOtherSeedsDiffer) {
  auto shard = counting_shard(5000);
  LmLoader a(shard, options(4, 8)), b(shard, options(4, 8)), c(shard, options(4, 8, 0, 1, 8));
  bool differs = false;
  for (int step = 0; step < 5; ++step) {
    const auto x = values(a.next().window), y = values(b.next().window), z = values(c.next().window);
    EXPECT_EQ(x, y);
    differs = differs || x != z;
  }
  EXPECT_TRUE(differs);
  // Successive batches differ.
  LmLoader d(shard, options(4, 8));
  EXPECT_NE(values(d.next().window), values(d.next().window));
}

TEST(LmLoaderTest, RanksPartitionTheSameGlobalBatchForAnyWorldSize) {
  auto shard = counting_shard(5000);
  LmLoader one(shard, options(4, 8, 0, 1));
  LmLoader r0(shard, options(2, 8, 0, 2)), r1(shard, options(2, 8, 1, 2));
  LmLoader q0(shard, options(1, 8, 0, 4)), q1(shard, options(1, 8, 1, 4)), q2(shard, options(1, 8, 2, 4)),
      q3(shard, options(1, 8, 3, 4));
  for (int step = 0; step < 4; ++step) {
    const auto global = values(one.next().inputs);
    auto two = values(r0.next().inputs);
    const auto second = values(r1.next().inputs);
    two.insert(two.end(), second.begin(), second.end());
    EXPECT_EQ(two, global) << "step " << step;
    std::vector<int64_t> four;
    for (LmLoader* q : {&q0, &q1, &q2, &q3}) {
      const auto rows = values(q->next().inputs);
      four.insert(four.end(), rows.begin(), rows.end());
    }
    EXPECT_EQ(four, global) << "step " << step;
  }
  EXPECT_EQ(one.state().offset, r1.state().offset);
}

TEST(LmLoaderTest, RestoredStateContinuesWithTheSameBatches) {
  auto shard = counting_shard(5000);
  LmLoader loader(shard, options(3, 8));
  for (int i = 0; i < 3; ++i) loader.next();
  const nlohmann::json saved = lm_loader_state_to_json(loader.state());
  EXPECT_EQ(saved.at("step").get<int64_t>(), 3);
  std::vector<std::vector<int64_t>> expected;
  for (int i = 0; i < 4; ++i) expected.push_back(values(loader.next().window));

  LmLoader resumed(shard, options(3, 8, 0, 1, /*seed=*/999));  // the state carries the seed
  resumed.restore(lm_loader_state_from_json(saved));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(values(resumed.next().window), expected[i]) << "batch " << i;
  EXPECT_EQ(resumed.state().step, 7);
  EXPECT_THROW(lm_loader_state_from_json(nlohmann::json{{"seed", 1}}), Error);
}

TEST(LmLoaderTest, ShardShorterThanAWindowIsAnError) {
  auto shard = counting_shard(8);
  try {
    LmLoader loader(shard, options(1, 8));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fewer than one window"), std::string::npos) << e.what();
  }
  EXPECT_THROW(LmLoader(shard, options(1, 4, 2, 2)), Error);  // rank outside the world
}

TEST(LmEvalIteratorTest, VisitsConsecutiveWindowsOnceSplitAcrossRanks) {
  auto shard = counting_shard(103);
  // T = 10: windows start at 0, 10, ..., 90 (90 + 11 <= 103): 10 windows.
  LmLoaderOptions o = options(3, 10, 0, 1);
  LmEvalIterator single(shard, o);
  EXPECT_EQ(single.num_windows(), 10);
  EXPECT_EQ(single.num_batches(), 4);
  std::vector<int64_t> starts;
  LmBatch batch;
  while (single.next(batch)) {
    const auto in = values(batch.inputs), tg = values(batch.targets);
    for (int64_t r = 0; r < batch.rows(); ++r) {
      starts.push_back(in[r * 10]);
      EXPECT_EQ(tg[r * 10 + 9], in[r * 10] + 10);
    }
  }
  EXPECT_EQ(starts, (std::vector<int64_t>{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}));
  EXPECT_FALSE(single.next(batch));
  single.reset();
  EXPECT_TRUE(single.next(batch));

  // Two ranks with B = 3: global batches of 6 windows; rank 1's second batch holds only window 9.
  LmEvalIterator r0(shard, options(3, 10, 0, 2)), r1(shard, options(3, 10, 1, 2));
  EXPECT_EQ(r0.num_batches(), 2);
  std::vector<int64_t> rows0, rows1;
  LmBatch b0, b1;
  while (r0.next(b0)) {
    ASSERT_TRUE(r1.next(b1));
    rows0.push_back(b0.rows());
    rows1.push_back(b1.rows());
  }
  EXPECT_FALSE(r1.next(b1));
  EXPECT_EQ(rows0, (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(rows1, (std::vector<int64_t>{3, 1}));
}

}  // namespace
}  // namespace tessera::data
