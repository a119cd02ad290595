// Bucket assignment of the DDP reducer and the ZeRO-1 flat layout: pure functions, no MPI.
#include <gtest/gtest.h>

#include "framework/core/error.h"
#include "framework/dist/ddp.h"
#include "framework/dist/zero.h"

namespace tessera::dist {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

BucketPlanEntry entry(int64_t numel, DType dtype = DType::f32) { return {numel, dtype, Device::cpu()}; }

TEST(BucketTest, BucketsFollowReverseRegistrationOrderWithASmallFirstBucket) {
  // 4-byte wire elements; first bucket 40 bytes, then 100 bytes.
  const std::vector<BucketPlanEntry> params = {entry(5), entry(5), entry(20), entry(3), entry(8), entry(2)};
  const auto buckets = assign_buckets(params, 4, 40 / kMiB, 100 / kMiB);
  // Reverse order: 5 (2), 4 (8) fill 40 bytes; then 3 (3) + 2 (20) = 92 bytes; then 1, 0.
  ASSERT_EQ(buckets.size(), 3u);
  EXPECT_EQ(buckets[0], (std::vector<size_t>{5, 4}));
  EXPECT_EQ(buckets[1], (std::vector<size_t>{3, 2}));
  EXPECT_EQ(buckets[2], (std::vector<size_t>{1, 0}));
}

TEST(BucketTest, AParameterLargerThanTheLimitGetsItsOwnBucket) {
  const std::vector<BucketPlanEntry> params = {entry(1), entry(1000), entry(1)};
  const auto buckets = assign_buckets(params, 4, 8 / kMiB, 8 / kMiB);
  ASSERT_EQ(buckets.size(), 3u);
  EXPECT_EQ(buckets[1], (std::vector<size_t>{1}));
}

TEST(BucketTest, DtypesAndDevicesAreNeverMixedInABucket) {
  const std::vector<BucketPlanEntry> params = {entry(4), entry(4, DType::bf16), entry(4, DType::bf16)};
  const auto buckets = assign_buckets(params, 4, 1.0, 1.0);
  ASSERT_EQ(buckets.size(), 2u);
  EXPECT_EQ(buckets[0], (std::vector<size_t>{2, 1}));
  EXPECT_EQ(buckets[1], (std::vector<size_t>{0}));
}

TEST(BucketTest, WireBytesDecideTheCut) {
  const std::vector<BucketPlanEntry> params = {entry(10), entry(10)};
  EXPECT_EQ(assign_buckets(params, 4, 40 / kMiB, 40 / kMiB).size(), 2u);  // f32 wire: 40 bytes each
  EXPECT_EQ(assign_buckets(params, 2, 40 / kMiB, 40 / kMiB).size(), 1u);  // bf16 wire: 40 together
}

TEST(BucketTest, BadSettingsAreErrorsNamingTheKey) {
  try {
    assign_buckets({entry(1)}, 4, 0.0, 25.0);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dist.first_bucket_mb"), std::string::npos);
  }
  EXPECT_EQ(parse_allreduce_dtype("bf16"), DType::bf16);
  EXPECT_EQ(parse_allreduce_dtype("fp32"), DType::f32);
  EXPECT_EQ(parse_allreduce_dtype("fp16"), DType::f16);
  try {
    parse_allreduce_dtype("fp8");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dist.allreduce_dtype"), std::string::npos);
  }
}

TEST(ZeroLayoutTest, ShardsAreEqualAlignedAndCoverTheParametersOnce) {
  for (int world : {1, 2, 3, 4, 7}) {
    const ZeroLayout layout = make_zero_layout({13, 1, 30, 6}, world);
    EXPECT_EQ(layout.total, 50);
    EXPECT_EQ(layout.shard % 4, 0);
    EXPECT_EQ(layout.padded, layout.shard * world);
    EXPECT_GE(layout.padded, layout.total);
    EXPECT_LT(layout.padded - layout.total, 4 * world) << "padding is less than one aligned unit per rank";
    std::vector<int> hits(50, 0);
    for (int r = 0; r < world; ++r) {
      for (const auto& piece : layout.pieces(r)) {
        EXPECT_GE(piece.shard_begin, 0);
        EXPECT_LE(piece.shard_begin + piece.numel, layout.shard);
        for (int64_t k = 0; k < piece.numel; ++k)
          ++hits[static_cast<size_t>(layout.offsets[piece.param] + piece.param_begin + k)];
      }
    }
    for (int h : hits) EXPECT_EQ(h, 1) << "world " << world;
  }
}

}  // namespace
}  // namespace tessera::dist
