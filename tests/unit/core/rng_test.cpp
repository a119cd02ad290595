// Philox random tensors: determinism, advancing state, distribution sanity.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/core/rng.h"
#include "kernels/philox.h"

namespace tessera {
namespace {

TEST(RngTest, PhiloxMatchesTheRandom123KnownAnswer) {
  // Known-answer test of Philox4x32-10 from the Random123 distribution (kat_vectors):
  // counter = 0, key = 0 -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8.
  const kernels::PhiloxBlock b = kernels::philox4x32(0, 0);
  EXPECT_EQ(b.x[0], 0x6627e8d5u);
  EXPECT_EQ(b.x[1], 0xe169c58du);
  EXPECT_EQ(b.x[2], 0xbc57ac4cu);
  EXPECT_EQ(b.x[3], 0x9b00dbd8u);
}

TEST(RngTest, SameSeedSameNumbersAndStateAdvances) {
  Generator a(42), b(42);
  const auto x1 = rand({10}, 0, 1, DType::f32, Device::cpu(), &a).to_vector<float>();
  const auto y1 = rand({10}, 0, 1, DType::f32, Device::cpu(), &b).to_vector<float>();
  EXPECT_EQ(x1, y1);
  EXPECT_EQ(a.offset(), 3u);  // ceil(10 / 4) blocks
  const auto x2 = rand({10}, 0, 1, DType::f32, Device::cpu(), &a).to_vector<float>();
  EXPECT_NE(x1, x2);
  Generator c(42);
  c.set_state(42, 3);
  EXPECT_EQ(rand({10}, 0, 1, DType::f32, Device::cpu(), &c).to_vector<float>(), x2);
}

TEST(RngTest, DistributionsHaveTheRightMoments) {
  Generator g(7);
  const auto u = rand({100000}, -1, 3, DType::f64, Device::cpu(), &g).to_vector<double>();
  double mean = 0;
  for (double v : u) {
    EXPECT_GE(v, -1.0);
    EXPECT_LT(v, 3.0);
    mean += v / u.size();
  }
  EXPECT_NEAR(mean, 1.0, 0.02);
  const auto n = randn({100000}, 2.0, 0.5, DType::f64, Device::cpu(), &g).to_vector<double>();
  double m = 0, s = 0;
  for (double v : n) m += v / n.size();
  for (double v : n) s += (v - m) * (v - m) / n.size();
  EXPECT_NEAR(m, 2.0, 0.01);
  EXPECT_NEAR(std::sqrt(s), 0.5, 0.01);
  const auto k = randint({10000}, 3, 7, DType::i64, Device::cpu(), &g).to_vector<int64_t>();
  int seen[4] = {0, 0, 0, 0};
  for (int64_t v : k) {
    ASSERT_GE(v, 3);
    ASSERT_LT(v, 7);
    ++seen[v - 3];
  }
  for (int c : seen) EXPECT_GT(c, 2000);
}

}  // namespace
}  // namespace tessera
