// The job registry: registered jobs are built from a context and read their config; an
// unknown job name is an error listing the known ones.
#include <gtest/gtest.h>

#include <algorithm>

#include "framework/core/error.h"
#include "framework/train/job.h"

namespace tessera::train {
namespace {

class CountingJob : public Job {
 public:
  explicit CountingJob(const JobContext& ctx) : steps_(ctx.config.get_int("steps", 1)) {}
  void run() override {}
  int64_t steps_;
};
TESSERA_JOB(unit_test_counting_job, [](const JobContext& ctx) { return std::make_unique<CountingJob>(ctx); });

TEST(JobRegistryTest, MakesRegisteredJobsAndTheyReadConfig) {
  Config config = Config::from_string("steps = 7\n", "job.toml");
  JobContext ctx{config, "/tmp/out", "", Device::cpu()};
  auto job = make_job("unit_test_counting_job", ctx);
  EXPECT_EQ(dynamic_cast<CountingJob&>(*job).steps_, 7);
  EXPECT_NO_THROW(config.check_all_used());
  const auto names = job_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "unit_test_counting_job"), names.end());
}

TEST(JobRegistryTest, UnknownJobListsKnownOnes) {
  Config config = Config::from_string("", "job.toml");
  JobContext ctx{config, "/tmp/out", "", Device::cpu()};
  try {
    make_job("clasifier", ctx);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("unknown training job \"clasifier\" (config key `job` in job.toml)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unit_test_counting_job"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace tessera::train
