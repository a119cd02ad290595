// GPU benchmark of Tessera's GEMM and memory-bound kernels, timed with CUDA events (median of
// repeated runs after warm-up; inputs rotate among several buffers so caches do not flatter).
// Prints one machine-readable line per measurement:
//   BENCH <kind> <name> <value> <unit> <details>
// tests/bench/run_ops.sh runs it next to tests/bench/torch_ops_peer.py and prints the table.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "framework/core/cuda_check.h"
#include "framework/core/cuda_context.h"
#include "framework/ops/ops.h"

using namespace tessera;

namespace {

double median_ms(const std::function<void(int)>& body, int warmup = 5, int reps = 30) {
  auto stream = static_cast<cudaStream_t>(cuda::compute_stream(0));
  for (int i = 0; i < warmup; ++i) body(i);
  std::vector<double> times;
  cudaEvent_t start, stop;
  TESSERA_CUDA_CHECK(cudaEventCreate(&start));
  TESSERA_CUDA_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < reps; ++i) {
    TESSERA_CUDA_CHECK(cudaEventRecord(start, stream));
    body(i);
    TESSERA_CUDA_CHECK(cudaEventRecord(stop, stream));
    TESSERA_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    TESSERA_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void bench_gemm(int64_t m, int64_t n, int64_t k, bool trans_b) {
  NoGradGuard no_grad;
  const Device dev = Device::cuda(0);
  std::vector<Tensor> as, bs;
  for (int i = 0; i < 3; ++i) {
    as.push_back(randn({m, k}, 0, 1, DType::bf16, dev));
    bs.push_back(trans_b ? randn({n, k}, 0, 1, DType::bf16, dev) : randn({k, n}, 0, 1, DType::bf16, dev));
  }
  const double ms = median_ms([&](int i) {
    const Tensor& b = bs[i % 3];
    Tensor c = matmul(as[i % 3], trans_b ? transpose(b, 0, 1) : b);
  });
  const double tflops = 2.0 * m * n * k / (ms * 1e-3) / 1e12;
  std::printf("BENCH gemm bf16_%ldx%ldx%ld%s %.1f TFLOP/s ms=%.4f\n", static_cast<long>(m), static_cast<long>(n),
              static_cast<long>(k), trans_b ? "_nt" : "", tflops, ms);
}

// bytes: read + written per call
void report_bandwidth(const char* name, double bytes, double ms) {
  std::printf("BENCH membw %s %.1f GB/s ms=%.4f bytes=%.0f\n", name, bytes / (ms * 1e-3) / 1e9, ms, bytes);
}

void bench_memory_bound() {
  NoGradGuard no_grad;
  const Device dev = Device::cuda(0);
  const int64_t n = 1LL << 28;  // 256 Mi elements: 512 MiB in bf16, 1 GiB in f32
  for (DType dt : {DType::f32, DType::bf16}) {
    const double es = static_cast<double>(dtype_size(dt));
    std::vector<Tensor> xs, ys;
    for (int i = 0; i < 2; ++i) {
      xs.push_back(randn({n}, 0, 1, dt, dev));
      ys.push_back(randn({n}, 0, 1, dt, dev));
    }
    Tensor dst = Tensor::empty({n}, dt, dev);
    auto stream = static_cast<cudaStream_t>(cuda::compute_stream(0));
    const std::string suffix = std::string("_") + dtype_name(dt);
    report_bandwidth(("copy" + suffix).c_str(), 2 * n * es, median_ms([&](int i) {
      TESSERA_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), xs[i % 2].data_ptr(), n * es, cudaMemcpyDeviceToDevice, stream));
    }));
    report_bandwidth(("add" + suffix).c_str(), 3 * n * es, median_ms([&](int i) { Tensor z = add(xs[i % 2], ys[i % 2]); }));
    report_bandwidth(("mul_scalar" + suffix).c_str(), 2 * n * es, median_ms([&](int i) { Tensor z = xs[i % 2] * 3.0; }));
    report_bandwidth(("gelu" + suffix).c_str(), 2 * n * es, median_ms([&](int i) { Tensor z = gelu(xs[i % 2]); }));
    report_bandwidth(("gelu_backward" + suffix).c_str(), 3 * n * es, median_ms([&](int i) {
      Tensor z = activation_grad(kernels::UnaryOp::gelu, ys[i % 2], xs[i % 2]);
    }));
    report_bandwidth(("sum" + suffix).c_str(), n * es, median_ms([&](int i) { Tensor z = sum(xs[i % 2]); }));
    Tensor rows = reshape(xs[0], {n / 4096, 4096});
    report_bandwidth(("row_sum_4096" + suffix).c_str(), n * es, median_ms([&](int) { Tensor z = sum(rows, {1}); }));
    report_bandwidth(("column_sum_4096" + suffix).c_str(), n * es, median_ms([&](int) { Tensor z = sum(rows, {0}); }));
    const DType other = dt == DType::f32 ? DType::bf16 : DType::f32;
    report_bandwidth(("cast_to_" + std::string(dtype_name(other)) + suffix).c_str(),
                     n * (es + static_cast<double>(dtype_size(other))),
                     median_ms([&](int i) { Tensor z = xs[i % 2].to(other); }));
  }
}

}  // namespace

int main() {
  if (cuda_device_count() == 0) {
    std::printf("no CUDA device: benchmark skipped\n");
    return 0;
  }
  cudaDeviceProp prop;
  TESSERA_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("DEVICE %s\n", prop.name);
  for (auto [m, n, k] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {4096, 4096, 4096}, {8192, 8192, 8192}, {16384, 3072, 768}, {16384, 768, 3072}, {16384, 2304, 768}})
    bench_gemm(m, n, k, false);
  bench_gemm(16384, 3072, 768, true);
  bench_gemm(8192, 8192, 8192, true);
  bench_memory_bound();
  return 0;
}
