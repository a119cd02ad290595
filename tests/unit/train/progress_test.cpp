// Progress lines: format, due steps, durations, disabled ranks.
#include <gtest/gtest.h>

#include "framework/train/progress.h"

namespace tessera::train {
namespace {

TEST(ProgressTest, FormatsDurations) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(75), "1:15");
  EXPECT_EQ(format_duration(3725), "1:02:05");
}

TEST(ProgressTest, PrintsStepLossRateElapsedAndEta) {
  Progress p(200, 50, "examples");
  EXPECT_FALSE(p.due(49));
  EXPECT_TRUE(p.due(50));
  EXPECT_TRUE(p.due(200));
  p.count(6400);
  ::testing::internal::CaptureStdout();
  p.print(50, 0.123456, "lr 1.0e-03");
  const std::string line = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(line.rfind("step  50/200 | loss 0.1235 | ", 0), 0u) << line;
  EXPECT_NE(line.find(" examples/s | elapsed 0:00 | ETA "), std::string::npos) << line;
  EXPECT_NE(line.find(" | lr 1.0e-03\n"), std::string::npos) << line;
}

TEST(ProgressTest, DisabledPrintsNothing) {
  Progress p(10, 1, "tokens", 0, false);
  ::testing::internal::CaptureStdout();
  p.print(1, 1.0);
  p.note("hello");
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "");
}

}  // namespace
}  // namespace tessera::train
