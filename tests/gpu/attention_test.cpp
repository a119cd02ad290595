// CUDA flash attention against the float64 reference (tests/common/attention_reference.h).
//
// Every tensor-core variant (bf16/f16 x head_dim 64/128 x causal or not) on lengths that are
// and are not tile multiples, with fewer and more queries than keys and grouped-query heads,
// on fresh random inputs, with every output poisoned (NaN) before the run. The error bound is
// flash-attention's: max |ours - ref64| <= 2 * max |pytorch_style - ref64| + eps (max-norm,
// relative to max |ref64|), where pytorch_style rounds the inputs and every intermediate
// matrix to bf16/f16 and computes in f32. The deterministic backward must give the same bits
// twice. The simple kernel (f32, f64, other head dims) is checked against float64 directly.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "framework/core/tensor_layout.h"
#include "framework/ops/ops.h"
#include "tests/common/attention_reference.h"

namespace tessera::testing {
namespace {

struct GpuCase {
  DType dtype;
  int64_t head_dim;
  bool causal;
  int64_t q_len, kv_len;
  int64_t heads = 2, kv_heads = 2, batch = 2;
};

std::string describe(const GpuCase& c) {
  std::ostringstream out;
  out << dtype_name(c.dtype) << " D=" << c.head_dim << (c.causal ? " causal" : " full") << " B=" << c.batch
      << " H=" << c.heads << " Hkv=" << c.kv_heads << " Sq=" << c.q_len << " Sk=" << c.kv_len;
  return out.str();
}

// Random normal inputs, already rounded to the kernel's dtype so that the float64 reference
// sees exactly what the kernel sees.
AttentionProblem random_problem(const GpuCase& c, uint64_t seed) {
  Generator gen(seed);
  AttentionProblem p;
  p.batch = c.batch;
  p.heads = c.heads;
  p.kv_heads = c.kv_heads;
  p.q_len = c.q_len;
  p.kv_len = c.kv_len;
  p.head_dim = c.head_dim;
  p.causal = c.causal;
  p.scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  auto draw = [&](int64_t heads, int64_t len) {
    auto x = randn({c.batch, heads, len, c.head_dim}, 0, 1, DType::f64, Device::cpu(), &gen).to_vector<double>();
    for (double& v : x) v = round_to(v, c.dtype);
    return x;
  };
  p.q = draw(c.heads, c.q_len);
  p.k = draw(c.kv_heads, c.kv_len);
  p.v = draw(c.kv_heads, c.kv_len);
  p.dout = draw(c.heads, c.q_len);
  return p;
}

struct KernelResult {
  std::vector<double> out, lse, dq, dk, dv;
};


// Runs the CUDA kernels directly on NaN-filled outputs.
KernelResult run_kernels(const AttentionProblem& p, DType dtype, bool deterministic) {
  const Device dev = Device::cuda(0);
  const Shape qs{p.batch, p.heads, p.q_len, p.head_dim}, ks{p.batch, p.kv_heads, p.kv_len, p.head_dim};
  const Tensor q = Tensor::from_vector(p.q, qs, dtype, dev), k = Tensor::from_vector(p.k, ks, dtype, dev);
  const Tensor v = Tensor::from_vector(p.v, ks, dtype, dev), dout = Tensor::from_vector(p.dout, qs, dtype, dev);
  const Tensor out = Tensor::full(qs, NAN, dtype, dev);
  const Tensor lse = Tensor::full({p.batch, p.heads, p.q_len}, NAN, kernels::attention_lse_dtype(dtype), dev);
  const Tensor dq = Tensor::full(qs, NAN, dtype, dev), dk = Tensor::full(ks, NAN, dtype, dev);
  const Tensor dv = Tensor::full(ks, NAN, dtype, dev);
  kernels::AttentionArgs a = attention_kernel_args(q, k, v, p.causal, p.scale, {out, lse, dout, dq, dk, dv});
  a.deterministic = deterministic;
#ifdef TESSERA_WITH_CUDA
  kernels::attention_forward_cuda(a, stream_for(q));
  kernels::attention_backward_cuda(a, stream_for(q));
#else
  ADD_FAILURE() << "built without CUDA";  // unreachable: the tests skip without a device
#endif
  return {out.to_vector<double>(), lse.to_vector<double>(), dq.to_vector<double>(), dk.to_vector<double>(),
          dv.to_vector<double>()};
}

// max |a - ref| / max(max |ref|, 1e-3); a NaN (an element never written) makes it infinite.
// The floor makes gradients that are exactly zero in float64 (one visible key: dS = 0)
// compare absolutely instead of dividing rounding noise by zero.
double max_abs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// max |a - ref| / max(max |ref|, floor). An output that is identically zero in exact
// arithmetic (dq and dk when there is a single key) is measured against `floor`, the scale of
// the problem's other outputs, rather than against its own zero.
double max_relative_error(const std::vector<double>& a, const std::vector<double>& ref, double floor = 1e-3) {
  if (a.size() != ref.size()) return INFINITY;
  double diff = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i])) return INFINITY;
    diff = std::max(diff, std::fabs(a[i] - ref[i]));
  }
  return diff / std::max(max_abs(ref), floor);
}

void expect_lse_close(const std::vector<double>& ours, const std::vector<double>& ref, const std::string& what) {
  ASSERT_EQ(ours.size(), ref.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    if (std::isinf(ref[i])) {
      ASSERT_TRUE(std::isinf(ours[i]) && ours[i] > 0) << what << " lse row " << i << " = " << ours[i];
    } else {
      ASSERT_NEAR(ours[i], ref[i], 1e-3 * std::max(1.0, std::fabs(ref[i]))) << what << " lse row " << i;
    }
  }
}

// flash-attention's criterion, per output.
void expect_within_twice_lowp(const KernelResult& ours, const AttentionResult& ref, const AttentionResult& lowp,
                              DType dtype, const std::string& what) {
  const double eps = dtype == DType::bf16 ? 1e-3 : 1e-4;
  struct Output {
    const char* name;
    const std::vector<double>& ours;
    const std::vector<double>& ref;
    const std::vector<double>& lowp;
  };
  const Output outputs[] = {{"out", ours.out, ref.out, lowp.out},
                            {"dq", ours.dq, ref.dq, lowp.dq},
                            {"dk", ours.dk, ref.dk, lowp.dk},
                            {"dv", ours.dv, ref.dv, lowp.dv}};
  double problem_scale = 0.0;
  for (const Output& o : outputs) problem_scale = std::max(problem_scale, max_abs(o.ref));
  const double floor = std::max(1e-3, 1e-2 * problem_scale);
  for (const Output& o : outputs) {
    const double err = max_relative_error(o.ours, o.ref, floor);
    const double bound = 2 * max_relative_error(o.lowp, o.ref, floor) + eps;
    EXPECT_LE(err, bound) << what << ": " << o.name << " error " << err << " > bound " << bound;
  }
}

bool have_gpu() { return cuda_device_count() > 0; }

std::vector<GpuCase> tensor_core_cases() {
  const std::pair<int64_t, int64_t> lengths[] = {{1, 1},    {17, 17},  {128, 128}, {197, 197},
                                                 {1, 333},  {77, 300}, {300, 77},  {256, 512}};
  std::vector<GpuCase> cases;
  for (DType dtype : {DType::bf16, DType::f16})
    for (int64_t d : {64, 128})
      for (bool causal : {false, true}) {
        int n = 0;
        for (const auto& [sq, sk] : lengths) {
          GpuCase c{dtype, d, causal, sq, sk};
          if (n++ % 2 == 1) c.heads = 4;  // every other length: grouped-query heads (4 over 2)
          cases.push_back(c);
        }
      }
  return cases;
}

TEST(AttentionCudaTest, TensorCoreVariantsWithinTwiceThePyTorchStyleError) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  uint64_t seed = 1000;
  for (const GpuCase& c : tensor_core_cases()) {
    const AttentionProblem p = random_problem(c, seed++);
    const AttentionResult ref = attention_reference(p), lowp = attention_reference_lowp(p, c.dtype);
    for (bool deterministic : {false, true}) {
      const std::string what = describe(c) + (deterministic ? " deterministic" : " atomic");
      const KernelResult ours = run_kernels(p, c.dtype, deterministic);
      expect_lse_close(ours.lse, ref.lse, what);
      expect_within_twice_lowp(ours, ref, lowp, c.dtype, what);
    }
  }
}

TEST(AttentionCudaTest, LongCausalSequenceWithinTwiceThePyTorchStyleError) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  for (int64_t d : {64, 128}) {
    const GpuCase c{DType::bf16, d, true, 1531, 1531, 2, 1, 1};
    const AttentionProblem p = random_problem(c, 77 + d);
    const AttentionResult ref = attention_reference(p), lowp = attention_reference_lowp(p, c.dtype);
    const KernelResult ours = run_kernels(p, c.dtype, false);
    expect_lse_close(ours.lse, ref.lse, describe(c));
    expect_within_twice_lowp(ours, ref, lowp, c.dtype, describe(c));
  }
}

TEST(AttentionCudaTest, DeterministicBackwardIsBitwiseReproducible) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  for (const GpuCase& c : {GpuCase{DType::bf16, 128, true, 300, 700, 4, 2}, GpuCase{DType::f16, 64, false, 513, 513}}) {
    const AttentionProblem p = random_problem(c, 42);
    const KernelResult first = run_kernels(p, c.dtype, true), second = run_kernels(p, c.dtype, true);
    EXPECT_EQ(first.out, second.out) << describe(c);
    EXPECT_EQ(first.dq, second.dq) << describe(c);
    EXPECT_EQ(first.dk, second.dk) << describe(c);
    EXPECT_EQ(first.dv, second.dv) << describe(c);
  }
}

// f32, f64 and head dims the tensor cores do not take run on the simple kernel.
TEST(AttentionCudaTest, SimpleKernelMatchesFloat64Reference) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  uint64_t seed = 2000;
  for (const GpuCase& c : {GpuCase{DType::f32, 64, true, 77, 130}, GpuCase{DType::f64, 40, false, 33, 65, 4, 2},
                           GpuCase{DType::f32, 200, true, 90, 60}}) {
    const AttentionProblem p = random_problem(c, seed++);
    const AttentionResult ref = attention_reference(p);
    const KernelResult ours = run_kernels(p, c.dtype, false);
    const double tolerance = c.dtype == DType::f64 ? 1e-12 : 1e-5;
    EXPECT_LE(max_relative_error(ours.out, ref.out), tolerance) << describe(c);
    EXPECT_LE(max_relative_error(ours.dq, ref.dq), tolerance) << describe(c);
    EXPECT_LE(max_relative_error(ours.dk, ref.dk), tolerance) << describe(c);
    EXPECT_LE(max_relative_error(ours.dv, ref.dv), tolerance) << describe(c);
  }
  for (const GpuCase& c : {GpuCase{DType::bf16, 96, true, 70, 90}, GpuCase{DType::f16, 32, false, 45, 45}}) {
    const AttentionProblem p = random_problem(c, seed++);
    const AttentionResult ref = attention_reference(p), lowp = attention_reference_lowp(p, c.dtype);
    expect_within_twice_lowp(run_kernels(p, c.dtype, false), ref, lowp, c.dtype, describe(c));
  }
}

// Through the op and autograd, with [batch, len, heads, head_dim] projections passed as
// permuted views (strided rows on the tensor-core path), against the same op on the CPU.
TEST(AttentionCudaTest, OpOnPermutedViewsMatchesCpu) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  Generator gen(9);
  const Tensor q64 = randn({2, 150, 4, 128}, 0, 1, DType::f64, Device::cpu(), &gen);
  const Tensor k64 = randn({2, 190, 2, 128}, 0, 1, DType::f64, Device::cpu(), &gen);
  const Tensor v64 = randn({2, 190, 2, 128}, 0, 1, DType::f64, Device::cpu(), &gen);
  const Tensor g64 = randn({2, 4, 150, 128}, 0, 1, DType::f64, Device::cpu(), &gen);
  std::vector<std::vector<double>> results[2];
  for (int device = 0; device < 2; ++device) {
    const Device dev = device == 0 ? Device::cpu() : Device::cuda(0);
    Tensor q = q64.to(DType::bf16).to(dev), k = k64.to(DType::bf16).to(dev), v = v64.to(DType::bf16).to(dev);
    q.set_requires_grad(true);
    k.set_requires_grad(true);
    v.set_requires_grad(true);
    const Tensor out = scaled_dot_product_attention(permute(q, {0, 2, 1, 3}), permute(k, {0, 2, 1, 3}),
                                                    permute(v, {0, 2, 1, 3}), true);
    out.backward(g64.to(DType::bf16).to(dev));
    results[device] = {out.to_vector<double>(), q.grad().to_vector<double>(), k.grad().to_vector<double>(),
                       v.grad().to_vector<double>()};
  }
  const char* names[] = {"out", "dq", "dk", "dv"};
  for (int i = 0; i < 4; ++i)
    EXPECT_LE(max_relative_error(results[1][i], results[0][i]), 2e-2) << names[i];
}

}  // namespace
}  // namespace tessera::testing
