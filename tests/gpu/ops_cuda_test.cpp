// Every entry of the op test table on CUDA against the same op on CPU (f32 and bf16): forward
// values and gradients, on fresh random inputs drawn identically on both devices (Philox),
// with every CUDA allocation poisoned (NaN) so an output element a kernel forgets to write
// fails the comparison. Skips with a message on machines without a CUDA device.
#include <gtest/gtest.h>

#include "framework/core/allocator.h"
#include "framework/ops/ops.h"
#include "tests/common/op_table.h"

namespace tessera::testing {
namespace {

struct CaseRun {
  Tensor output;
  std::vector<Tensor> grads;  // one per floating input (undefined if none reached it)
};

CaseRun run_case(const OpTestCase& c, DType dtype, Device device, uint64_t seed) {
  Generator gen(seed);
  InputMaker maker{dtype, device, &gen};
  std::vector<Tensor> inputs = c.inputs(maker);
  std::vector<Tensor> wrt;
  for (Tensor& t : inputs)
    if (t.defined() && is_floating_point(t.dtype()) && c.gradcheck) {
      t.set_requires_grad(true);
      wrt.push_back(t);
    }
  CaseRun run;
  run.output = c.forward(inputs);
  if (!wrt.empty() && run.output.requires_grad()) {
    Generator vgen(seed + 1);
    const Tensor v = randn(run.output.shape(), 0.0, 1.0, run.output.dtype(), device, &vgen);
    run.grads = autograd::grad({sum(mul(run.output, v))}, wrt, {}, std::nullopt, false, /*allow_unused=*/true);
  }
  return run;
}

class CudaVsCpuTest : public ::testing::TestWithParam<std::tuple<OpTestCase, DType>> {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine: GPU tests skipped";
    cuda_set_poison(true);
  }
  void TearDown() override { cuda_set_poison(false); }
};

TEST_P(CudaVsCpuTest, MatchesCpu) {
  const auto& [c, dtype] = GetParam();
  const double tolerance = dtype == DType::f32 ? 1e-4 : c.bf16_tolerance;
  for (uint64_t seed : {101u, 202u}) {
    const CaseRun cpu = run_case(c, dtype, Device::cpu(), seed);
    const CaseRun gpu = run_case(c, dtype, Device::cuda(0), seed);
    ASSERT_EQ(gpu.output.shape(), cpu.output.shape());
    EXPECT_LE(relative_error(gpu.output, cpu.output), tolerance) << c.name << " forward, " << dtype_name(dtype);
    ASSERT_EQ(gpu.grads.size(), cpu.grads.size());
    for (size_t i = 0; i < cpu.grads.size(); ++i) {
      ASSERT_EQ(gpu.grads[i].defined(), cpu.grads[i].defined()) << c.name << " gradient " << i;
      if (!cpu.grads[i].defined()) continue;
      EXPECT_LE(relative_error(gpu.grads[i], cpu.grads[i]), tolerance)
          << c.name << " gradient of input " << i << ", " << dtype_name(dtype);
    }
  }
}

std::string case_name(const ::testing::TestParamInfo<std::tuple<OpTestCase, DType>>& info) {
  return std::get<0>(info.param).name + "_" + dtype_name(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Ops, CudaVsCpuTest,
                         ::testing::Combine(::testing::ValuesIn(op_test_table()),
                                            ::testing::Values(DType::f32, DType::bf16)),
                         case_name);

}  // namespace
}  // namespace tessera::testing
