// JsonlLog: line format, flushing, exact floats, truncation on resume.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "framework/core/error.h"
#include "framework/train/log.h"

namespace tessera::train {
namespace {

namespace fs = std::filesystem;

class JsonlLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tessera_log_test_" + std::to_string(::getpid())) / "run";
  }
  void TearDown() override { fs::remove_all(dir_.parent_path()); }
  std::vector<std::string> lines() const {
    std::ifstream in(dir_ / "log.jsonl");
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  fs::path dir_;
};

TEST_F(JsonlLogTest, WritesOneFlushedObjectPerLine) {
  JsonlLog log(dir_.string());
  log.train(1, 2.5, {{"lr", 0.001}});
  // Visible before the log is closed: every line is flushed.
  EXPECT_EQ(lines(), (std::vector<std::string>{R"({"step":1,"loss":2.5,"lr":0.001})"}));
  log.eval(1, {{"test_accuracy", 0.75}, {"test_loss", 0.5}});
  EXPECT_EQ(lines().back(), R"({"step":1,"test_accuracy":0.75,"test_loss":0.5})");
}

TEST_F(JsonlLogTest, FloatLossesRoundTripExactly) {
  JsonlLog log(dir_.string());
  const float loss = 0.1f;  // not representable in a short decimal
  log.train(3, loss);
  const auto record = nlohmann::json::parse(lines().at(0));
  EXPECT_EQ(static_cast<float>(record["loss"].get<double>()), loss);
  EXPECT_EQ(record["loss"].get<double>(), static_cast<double>(loss));
}

TEST_F(JsonlLogTest, AppendsAcrossInstances) {
  JsonlLog(dir_.string()).train(1, 1.0);
  JsonlLog(dir_.string()).train(2, 0.5);
  EXPECT_EQ(lines().size(), 2u);
}

TEST_F(JsonlLogTest, TruncateAfterDropsLaterStepsAndTornLines) {
  {
    JsonlLog log(dir_.string());
    for (int s = 1; s <= 5; ++s) log.train(s, 1.0 / s);
    log.eval(4, {{"test_accuracy", 0.5}});
  }
  std::ofstream(dir_ / "log.jsonl", std::ios::app) << R"({"step":6,"lo)";  // a crash mid-line
  JsonlLog log(dir_.string());
  log.truncate_after(3);
  log.train(4, 9.0);
  const auto l = lines();
  ASSERT_EQ(l.size(), 4u);
  EXPECT_EQ(nlohmann::json::parse(l[2])["step"], 3);
  EXPECT_EQ(nlohmann::json::parse(l[3])["loss"], 9.0);
}

TEST_F(JsonlLogTest, DisabledLogWritesNothing) {
  JsonlLog log(dir_.string(), false);
  log.train(1, 1.0);
  EXPECT_FALSE(fs::exists(dir_ / "log.jsonl"));
}

TEST_F(JsonlLogTest, UnwritableDirectoryNamesPath) {
  try {
    JsonlLog log("/proc/tessera_cannot_exist/run");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/tessera_cannot_exist/run"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera::train
