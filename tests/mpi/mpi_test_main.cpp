// main() of tessera_mpi_tests: initialises the process group, runs the tests on every rank and
// makes the job fail if any rank failed. Rank 0 prints the usual gtest output; the other ranks
// print only their failures (prefixed with the rank).
#include <gtest/gtest.h>

#include <cstdio>

#include "framework/dist/process_group.h"

namespace {

class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: %s\n", rank_, result.file_name() ? result.file_name() : "?",
                 result.line_number(), result.summary());
  }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (info.result()->Failed())
      std::fprintf(stderr, "[rank %d] FAILED %s.%s\n", rank_, info.test_suite_name(), info.name());
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  tessera::dist::ProcessGroupOptions options;
  options.timeout_s = 120;  // a hung test fails with a report instead of stalling ctest
  auto& group = tessera::dist::ProcessGroup::init(options);
  if (group.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(group.rank()));
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  tessera::Tensor flag = tessera::Tensor::full({1}, failed, tessera::DType::i32);
  group.host_communicator().all_reduce(flag, tessera::dist::ReduceOp::max, false, "test results").wait();
  const bool any_failed = flag.data<int32_t>()[0] != 0;
  if (group.rank() == 0)
    std::printf("tessera_mpi_tests: %d rank(s), MPI thread level %d (0 single .. 3 multiple), %s\n",
                group.world_size(), group.mpi_thread_level(), any_failed ? "FAILED" : "all passed");
  tessera::dist::ProcessGroup::shutdown();
  return any_failed ? 1 : 0;
}
