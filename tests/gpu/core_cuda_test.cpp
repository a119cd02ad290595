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

// Sum, max and mean over rows and columns against a float64 CPU reference, on shapes that take
// the vectorised paths (widths that are multiples of 8, aligned) and those that cannot
// (odd widths, a view starting one element in), with many splits of the reduced axis.
TEST_F(CudaCoreTest, ReductionsMatchFloat64OnVectorAndScalarPaths) {
  Generator g(11);
  const std::vector<std::vector<int64_t>> shapes = {{3000, 256}, {513, 72}, {37, 4096}, {2, 100003}, {4097, 7}};
  for (DType dtype : {DType::f32, DType::bf16}) {
    for (const auto& shape : shapes) {
      for (bool offset : {false, true}) {
        Tensor base = randn({shape[0] * shape[1] + 1}, 0, 1, dtype, Device::cpu(), &g);
        Tensor x = base.slice(0, offset ? 1 : 0, (offset ? 1 : 0) + shape[0] * shape[1]).reshape(shape);
        Tensor gx = base.to(Device::cuda(0)).slice(0, offset ? 1 : 0, (offset ? 1 : 0) + shape[0] * shape[1]).reshape(shape);
        const Tensor x64 = x.to(DType::f64);
        for (int64_t dim : {0, 1}) {
          const std::string what = std::string(dtype_name(dtype)) + " [" + std::to_string(shape[0]) + ", " +
                                   std::to_string(shape[1]) + "] dim " + std::to_string(dim) + (offset ? " offset" : "");
          const auto want_sum = sum(x64, {dim}).to_vector<double>();
          const auto got_sum = sum(gx, {dim}).to(Device::cpu()).to_vector<double>();
          const auto want_max = max(x64, dim).to_vector<double>();
          const auto got_max = max(gx, dim).to(Device::cpu()).to_vector<double>();
          ASSERT_EQ(got_sum.size(), want_sum.size()) << what;
          const double n = static_cast<double>(shape[dim]);
          const double tol = (dtype == DType::bf16 ? 2e-2 : 1e-5) * std::sqrt(n) + 1e-5;
          for (size_t i = 0; i < want_sum.size(); ++i) {
            ASSERT_NEAR(got_sum[i], want_sum[i], tol) << what << " sum at " << i;
            ASSERT_EQ(got_max[i], want_max[i]) << what << " max at " << i;
          }
        }
      }
    }
  }
}

// Casts between f32, bf16 and f16 equal the CPU's, element for element, on aligned and
// misaligned views and lengths that leave a scalar tail.
TEST_F(CudaCoreTest, CastsMatchTheCpuOnVectorAndScalarPaths) {
  Generator g(12);
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{4096}, int64_t{100003}}) {
    for (int64_t start : {0, 1, 3}) {
      for (DType from : {DType::f32, DType::bf16, DType::f16}) {
        Tensor base = randn({n + 3}, 0, 10, from, Device::cpu(), &g);
        Tensor x = base.slice(0, start, start + n);
        Tensor gx = base.to(Device::cuda(0)).slice(0, start, start + n);
        for (DType to : {DType::f32, DType::bf16, DType::f16}) {
          EXPECT_EQ(gx.to(to).to(Device::cpu()).to_vector<double>(), x.to(to).to_vector<double>())
              << dtype_name(from) << " -> " << dtype_name(to) << " n " << n << " start " << start;
        }
      }
    }
  }
}

}  // namespace
}  // namespace tessera
