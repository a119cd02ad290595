// Learning-rate schedules at known steps.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/core/error.h"
#include "framework/optim/schedule.h"

namespace tessera::optim {
namespace {

TEST(ScheduleTest, ConstantWithAndWithoutWarmup) {
  Constant plain(0.3);
  EXPECT_EQ(plain.at(0), 0.3);
  EXPECT_EQ(plain.at(1000000), 0.3);
  Constant warm(0.4, 4);
  EXPECT_EQ(warm.at(0), 0.0);
  EXPECT_DOUBLE_EQ(warm.at(1), 0.1);
  EXPECT_DOUBLE_EQ(warm.at(3), 0.3);
  EXPECT_EQ(warm.at(4), 0.4);
}

TEST(ScheduleTest, WarmupCosineAtKnownSteps) {
  WarmupCosine s(1.0, 10, 110, 0.1);
  EXPECT_EQ(s.at(0), 0.0);
  EXPECT_DOUBLE_EQ(s.at(5), 0.5);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);                                   // peak
  EXPECT_NEAR(s.at(60), 0.55, 1e-12);                                // half way: (1 + 0.1) / 2
  EXPECT_NEAR(s.at(35), 0.1 + 0.45 * (1 + std::cos(M_PI / 4)), 1e-12);
  EXPECT_NEAR(s.at(109), 0.1 + 0.45 * (1 + std::cos(M_PI * 99 / 100)), 1e-12);
  EXPECT_EQ(s.at(110), 0.1);
  EXPECT_EQ(s.at(5000), 0.1);
  // Monotone after warmup.
  for (int64_t step = 10; step < 110; ++step) EXPECT_GE(s.at(step), s.at(step + 1));
}

TEST(ScheduleTest, FactoryByNameAndErrors) {
  auto c = make_schedule("cosine", 2.0, 0, 4);
  EXPECT_EQ(c->at(0), 2.0);
  EXPECT_NEAR(c->at(2), 1.0, 1e-12);
  EXPECT_EQ(make_schedule("constant", 0.5)->at(7), 0.5);
  EXPECT_EQ(make_schedule("warmup_cosine", 1.0, 2, 4)->at(1), 0.5);
  try {
    make_schedule("linear", 1.0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("constant, warmup_cosine, cosine"), std::string::npos) << e.what();
  }
  EXPECT_THROW(WarmupCosine(1.0, 10, 5), Error);
  EXPECT_THROW(WarmupCosine(1.0, 0, 10, 2.0), Error);
  EXPECT_THROW(Constant(1.0).at(-1), Error);
}

}  // namespace
}  // namespace tessera::optim
