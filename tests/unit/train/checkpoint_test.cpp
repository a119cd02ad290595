// Checkpoints: atomic step directories, latest-checkpoint discovery, keep-last pruning and
// loading with errors that name the damaged file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "framework/core/error.h"
#include "framework/train/checkpoint.h"

namespace tessera::train {
namespace {

namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    run_ = fs::temp_directory_path() / ("tessera_ckpt_test_" + std::to_string(::getpid()));
    fs::remove_all(run_);
  }
  void TearDown() override { fs::remove_all(run_); }

  static std::vector<CheckpointFile> files(float value) {
    nn::StateDict model = {{"fc.weight", Tensor::full({2, 3}, value)}, {"fc.bias", Tensor::zeros({2})}};
    nn::StateDict optim = {{"state.0.exp_avg", Tensor::full({2, 3}, value / 2)}};
    return {{"model", model}, {"optimizer", optim}};
  }
  std::string save(int64_t step, int64_t keep = 0) {
    return save_checkpoint(run_.string(), step, files(static_cast<float>(step)), {{"sampler", {{"epoch", 1}}}},
                           keep);
  }
  static std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }
  fs::path run_;
};

TEST_F(CheckpointTest, SaveWritesStepDirectoryThatLoadsBack) {
  const std::string dir = save(20);
  EXPECT_EQ(dir, (run_ / "checkpoints" / "step_20").string());
  for (const char* f : {"model.safetensors", "optimizer.safetensors", "state.json"})
    EXPECT_TRUE(fs::exists(fs::path(dir) / f)) << f;
  Checkpoint c = load_checkpoint(dir);
  EXPECT_EQ(c.step, 20);
  EXPECT_EQ(c.state["sampler"]["epoch"], 1);
  EXPECT_EQ(c.state["files"], nlohmann::json({"model.safetensors", "optimizer.safetensors"}));
  const nn::StateDict& model = c.file("model");
  ASSERT_EQ(model.size(), 2u);
  for (const auto& [name, t] : model)
    if (name == "fc.weight") EXPECT_EQ(t.to_vector<float>(), std::vector<float>(6, 20.0f));
  EXPECT_EQ(c.file("optimizer").at(0).second.to_vector<float>(), std::vector<float>(6, 10.0f));
  EXPECT_NE(error_of([&] { c.file("generator"); }).find("has no generator.safetensors"), std::string::npos);
}

TEST_F(CheckpointTest, NoTemporaryDirectoryIsLeftBehind) {
  save(5);
  for (const auto& e : fs::directory_iterator(run_ / "checkpoints"))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST_F(CheckpointTest, LatestIgnoresTemporaryAndIncompleteDirectories) {
  EXPECT_EQ(latest_checkpoint(run_.string()), "");
  save(10);
  save(9);
  fs::create_directories(run_ / "checkpoints" / "step_30.tmp-123");        // a crash mid-write
  fs::create_directories(run_ / "checkpoints" / "step_40");                // no state.json
  std::ofstream(run_ / "checkpoints" / "step_30.tmp-123" / "state.json") << "{}";
  const std::string latest = (run_ / "checkpoints" / "step_10").string();
  EXPECT_EQ(latest_checkpoint(run_.string()), latest);
  EXPECT_EQ(latest_checkpoint((run_ / "checkpoints").string()), latest);
  EXPECT_EQ(latest_checkpoint((run_ / "checkpoints" / "step_9").string()),
            (run_ / "checkpoints" / "step_9").string());
}

TEST_F(CheckpointTest, LatestComparesStepsNumerically) {
  save(9);
  save(100);
  EXPECT_EQ(latest_checkpoint(run_.string()), (run_ / "checkpoints" / "step_100").string());
}

TEST_F(CheckpointTest, KeepLastPrunesOldest) {
  for (int64_t s : {1, 2, 3, 4}) save(s, 2);
  EXPECT_FALSE(fs::exists(run_ / "checkpoints" / "step_1"));
  EXPECT_FALSE(fs::exists(run_ / "checkpoints" / "step_2"));
  EXPECT_TRUE(fs::exists(run_ / "checkpoints" / "step_3"));
  EXPECT_TRUE(fs::exists(run_ / "checkpoints" / "step_4"));
}

TEST_F(CheckpointTest, ResavingAStepReplacesIt) {
  save(7);
  save_checkpoint(run_.string(), 7, files(70.0f), nlohmann::json::object(), 0);
  Checkpoint c = load_checkpoint(latest_checkpoint(run_.string()));
  for (const auto& [name, t] : c.file("model"))
    if (name == "fc.weight") EXPECT_EQ(t.to_vector<float>()[0], 70.0f);
}

TEST_F(CheckpointTest, MissingFileIsNamed) {
  const std::string dir = save(3);
  fs::remove(fs::path(dir) / "optimizer.safetensors");
  const std::string msg = error_of([&] { load_checkpoint(dir); });
  EXPECT_NE(msg.find((fs::path(dir) / "optimizer.safetensors").string() + " is missing"), std::string::npos) << msg;
}

TEST_F(CheckpointTest, CorruptFilesAreNamed) {
  const std::string dir = save(3);
  const fs::path model = fs::path(dir) / "model.safetensors";
  fs::resize_file(model, fs::file_size(model) - 4);
  std::string msg = error_of([&] { load_checkpoint(dir); });
  EXPECT_NE(msg.find("checkpoint file " + model.string() + " cannot be loaded"), std::string::npos) << msg;

  std::ofstream(fs::path(dir) / "state.json") << "{\"step\": 3,";
  msg = error_of([&] { load_checkpoint(dir); });
  EXPECT_NE(msg.find((fs::path(dir) / "state.json").string() + " is not valid JSON"), std::string::npos) << msg;
}

TEST_F(CheckpointTest, MissingStateIsNamed) {
  const std::string dir = save(3);
  fs::remove(fs::path(dir) / "state.json");
  EXPECT_NE(error_of([&] { load_checkpoint(dir); }).find("state.json is missing"), std::string::npos);
}

}  // namespace
}  // namespace tessera::train
