// Core facilities on CUDA: random numbers equal to the CPU's, the caching allocator's
// statistics and reuse, copies between devices.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/core/allocator.h"
#include "framework/core/cuda_context.h"
#include "framework/core/rng.h"
#include "framework/ops/ops.h"

namespace tessera {
namespace {

class CudaCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine: GPU tests skipped";
  }
};

TEST_F(CudaCoreTest, PhiloxGivesTheSameNumbersOnBothDevices) {
  Generator a(1234), b(1234);
  const auto cpu_u = rand({10001}, -2, 2, DType::f32, Device::cpu(), &a).to_vector<float>();
  const auto gpu_u = rand({10001}, -2, 2, DType::f32, Device::cuda(0), &b).to_vector<float>();
  EXPECT_EQ(cpu_u, gpu_u);  // uniforms are exact
  const auto cpu_n = randn({10001}, 0, 1, DType::f32, Device::cpu(), &a).to_vector<float>();
  const auto gpu_n = randn({10001}, 0, 1, DType::f32, Device::cuda(0), &b).to_vector<float>();
  int differ = 0;
  for (size_t i = 0; i < cpu_n.size(); ++i) {
    EXPECT_NEAR(cpu_n[i], gpu_n[i], 4 * std::nextafter(std::fabs(cpu_n[i]), INFINITY) - 4 * std::fabs(cpu_n[i]) + 1e-7);
    differ += cpu_n[i] != gpu_n[i];
  }
  EXPECT_LE(differ, 5) << "normals differing in the last bit";
  const auto cpu_b = bernoulli({1000}, 0.3, DType::bf16, Device::cpu(), &a).to_vector<float>();
  const auto gpu_b = bernoulli({1000}, 0.3, DType::bf16, Device::cuda(0), &b).to_vector<float>();
  EXPECT_EQ(cpu_b, gpu_b);
}

TEST_F(CudaCoreTest, CachingAllocatorReusesBlocksAndCountsBytes) {
  cuda::synchronize(0);
  const AllocatorStats before = cuda_allocator_stats(0);
  void* first;
  {
    Tensor t = Tensor::empty({1 << 20}, DType::f32, Device::cuda(0));  // 4 MiB
    first = t.data_ptr();
    const AllocatorStats during = cuda_allocator_stats(0);
    EXPECT_GE(during.bytes_in_use - before.bytes_in_use, 4 << 20);
    EXPECT_GE(during.peak_bytes_in_use, during.bytes_in_use);
  }
  const AllocatorStats after = cuda_allocator_stats(0);
  EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
  EXPECT_GE(after.bytes_cached, 4 << 20);
  Tensor again = Tensor::empty({1 << 20}, DType::f32, Device::cuda(0));
  EXPECT_EQ(again.data_ptr(), first) << "a freed block of the same size is handed out again";
  EXPECT_EQ(cuda_allocator_stats(0).system_allocations, after.system_allocations);
}

TEST_F(CudaCoreTest, CopiesBetweenDevicesPreserveValuesAndDtypes) {
  Tensor host = Tensor::from_vector(std::vector<double>{1.5, -2, 3, 4.25, 5, 6}, {2, 3}, DType::f32);
  Tensor dev = host.to(Device::cuda(0));
  EXPECT_EQ(dev.to_vector<double>(), host.to_vector<double>());
  Tensor t = transpose(dev, 0, 1).to(DType::bf16);
  EXPECT_EQ(t.to(Device::cpu()).to_vector<double>(), transpose(host, 0, 1).contiguous().to_vector<double>());
}

TEST_F(CudaCoreTest, LargeBf16MatmulMatchesCpuWithinBf16Rounding) {
  Generator g(5);
  Tensor a = randn({256, 512}, 0, 1, DType::bf16, Device::cpu(), &g);
  Tensor b = randn({512, 384}, 0, 1, DType::bf16, Device::cpu(), &g);
  Tensor ref = matmul(a.to(DType::f64), b.to(DType::f64));
  Tensor out = matmul(a.to(Device::cuda(0)), b.to(Device::cuda(0))).to(Device::cpu());
  const auto r = ref.to_vector<double>(), o = out.to_vector<double>();
  double max_err = 0, max_ref = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    max_err = std::max(max_err, std::fabs(r[i] - o[i]));
    max_ref = std::max(max_ref, std::fabs(r[i]));
  }
  EXPECT_LT(max_err / max_ref, 1e-2);
}

}  // namespace
}  // namespace tessera
