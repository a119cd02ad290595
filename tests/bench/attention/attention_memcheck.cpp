// tessera_attention_memcheck: runs every CUDA attention variant once on small, awkward shapes
// (lengths that are not tile multiples, fewer and more queries than keys, grouped-query heads,
// no keys at all) so that `compute-sanitizer --tool memcheck` (or racecheck, synccheck) can
// watch every kernel. Exits non-zero if a kernel fails or leaves a non-finite value where a
// finite one belongs; correctness proper is tests/gpu/attention_test.cpp's job.
//
//   compute-sanitizer --tool memcheck --error-exitcode 1 build/tests/bench/attention/tessera_attention_memcheck
#include <cmath>
#include <cstdio>
#include <exception>

#include "framework/core/rng.h"
#include "framework/core/tensor.h"
#include "framework/core/tensor_layout.h"
#include "framework/ops/attention.h"

namespace {

using tessera::DType;
using tessera::Device;
using tessera::Shape;
using tessera::Tensor;

struct Case {
  DType dtype;
  int64_t head_dim;
  bool causal;
  int64_t batch, heads, kv_heads, q_len, kv_len;
};

// Runs forward, then both backward flavours; returns the number of non-finite outputs.
int64_t run(const Case& c, tessera::Generator& gen) {
  const Device dev = Device::cuda(0);
  const Shape qs{c.batch, c.heads, c.q_len, c.head_dim}, ks{c.batch, c.kv_heads, c.kv_len, c.head_dim};
  const Tensor q = tessera::randn(qs, 0, 1, c.dtype, dev, &gen), k = tessera::randn(ks, 0, 1, c.dtype, dev, &gen);
  const Tensor v = tessera::randn(ks, 0, 1, c.dtype, dev, &gen), dout = tessera::randn(qs, 0, 1, c.dtype, dev, &gen);
  const Tensor out = Tensor::empty(qs, c.dtype, dev);
  const Tensor lse = Tensor::empty({c.batch, c.heads, c.q_len}, tessera::kernels::attention_lse_dtype(c.dtype), dev);
  const Tensor dq = Tensor::empty(qs, c.dtype, dev), dk = Tensor::empty(ks, c.dtype, dev), dv = Tensor::empty(ks, c.dtype, dev);
  tessera::kernels::AttentionArgs a = tessera::attention_kernel_args(
      q, k, v, c.causal, 1.0 / std::sqrt(static_cast<double>(c.head_dim)), {out, lse, dout, dq, dk, dv});
  tessera::kernels::attention_forward_cuda(a, tessera::stream_for(q));
  int64_t bad = 0;
  auto count_bad = [&bad](const Tensor& t) {
    for (double x : t.to_vector<double>()) bad += std::isfinite(x) ? 0 : 1;
  };
  for (bool deterministic : {false, true}) {
    a.deterministic = deterministic;
    tessera::kernels::attention_backward_cuda(a, tessera::stream_for(q));
    count_bad(dq);
    count_bad(dk);
    count_bad(dv);
  }
  count_bad(out);
  return bad;
}

}  // namespace

int main() {
  try {
    if (tessera::cuda_device_count() == 0) {
      std::fprintf(stderr, "tessera_attention_memcheck: no CUDA device\n");
      return 1;
    }
    tessera::Generator gen(1);
    int64_t bad = 0;
    int cases = 0;
    for (DType dtype : {DType::bf16, DType::f16})
      for (int64_t d : {64, 128})
        for (bool causal : {false, true})
          for (const auto& [sq, sk] : {std::pair<int64_t, int64_t>{77, 131}, {131, 77}, {1, 65}, {64, 64}}) {
            bad += run({dtype, d, causal, 2, 4, 2, sq, sk}, gen);
            ++cases;
          }
    bad += run({DType::f32, 40, true, 1, 2, 1, 33, 50}, gen);  // simple kernel
    bad += run({DType::bf16, 64, true, 1, 2, 2, 20, 0}, gen);  // no keys: zeros
    cases += 2;
    std::printf("tessera_attention_memcheck: %d cases, %lld non-finite values\n", cases, static_cast<long long>(bad));
    return bad == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tessera_attention_memcheck: %s\n", e.what());
    return 1;
  }
}
