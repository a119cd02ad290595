// scaled_dot_product_attention on the CPU: the tiled flash-attention kernels against the naive
// float64 reference (tests/common/attention_reference.h), forward and all three gradients, on
// random shapes whose lengths are not multiples of the CPU tiles, causal and not, with fewer
// queries than keys (decoding) and more, grouped-query heads and strided operands.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <random>

#include "framework/ops/ops.h"
#include "kernels/attention.h"
#include "tests/common/attention_reference.h"
#include "tests/common/op_table.h"

namespace tessera::testing {
namespace {

struct Case {
  int64_t batch, heads, kv_heads, q_len, kv_len, head_dim;
  bool causal;
  double scale = 0.0;  // 0: 1/sqrt(head_dim)
};

std::string describe(const Case& c) {
  std::ostringstream out;
  out << "B=" << c.batch << " H=" << c.heads << " Hkv=" << c.kv_heads << " Sq=" << c.q_len << " Sk=" << c.kv_len
      << " D=" << c.head_dim << (c.causal ? " causal" : " full");
  return out.str();
}

// Hand-picked shapes (tails, decoding, queries that see nothing, grouped heads, exact
// multiples of the tiles) plus random ones.
std::vector<Case> cases() {
  std::vector<Case> out = {
      {1, 1, 1, 1, 1, 4, false},    {1, 2, 2, 37, 45, 8, false},  {2, 2, 1, 33, 33, 16, true},
      {1, 2, 2, 1, 70, 8, true},    {1, 3, 3, 19, 83, 8, true},   {1, 2, 2, 50, 20, 8, true},
      {1, 4, 2, 64, 64, 8, true},   {1, 4, 1, 31, 97, 12, false}, {1, 1, 1, 65, 32, 4, false, 0.3},
  };
  std::mt19937 rng(1234);
  auto pick = [&](int lo, int hi) { return static_cast<int64_t>(std::uniform_int_distribution<int>(lo, hi)(rng)); };
  for (int i = 0; i < 8; ++i) {
    const int64_t kv_heads = pick(1, 2);
    out.push_back({pick(1, 2), kv_heads * pick(1, 2), kv_heads, pick(1, 90), pick(1, 90), 4 * pick(1, 5), i % 2 == 0});
  }
  return out;
}

AttentionProblem random_problem(const Case& c, uint64_t seed) {
  Generator gen(seed);
  AttentionProblem p;
  p.batch = c.batch;
  p.heads = c.heads;
  p.kv_heads = c.kv_heads;
  p.q_len = c.q_len;
  p.kv_len = c.kv_len;
  p.head_dim = c.head_dim;
  p.causal = c.causal;
  p.scale = c.scale > 0 ? c.scale : 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  p.q = randn({c.batch, c.heads, c.q_len, c.head_dim}, 0, 1, DType::f64, Device::cpu(), &gen).to_vector<double>();
  p.k = randn({c.batch, c.kv_heads, c.kv_len, c.head_dim}, 0, 1, DType::f64, Device::cpu(), &gen).to_vector<double>();
  p.v = randn({c.batch, c.kv_heads, c.kv_len, c.head_dim}, 0, 1, DType::f64, Device::cpu(), &gen).to_vector<double>();
  p.dout = randn({c.batch, c.heads, c.q_len, c.head_dim}, 0, 1, DType::f64, Device::cpu(), &gen).to_vector<double>();
  return p;
}

struct OpResult {
  Tensor out, dq, dk, dv;
};

OpResult run_op(const AttentionProblem& p, DType dtype) {
  const Shape qs{p.batch, p.heads, p.q_len, p.head_dim}, ks{p.batch, p.kv_heads, p.kv_len, p.head_dim};
  Tensor q = Tensor::from_vector(p.q, qs, dtype), k = Tensor::from_vector(p.k, ks, dtype);
  Tensor v = Tensor::from_vector(p.v, ks, dtype);
  q.set_requires_grad(true);
  k.set_requires_grad(true);
  v.set_requires_grad(true);
  Tensor out = scaled_dot_product_attention(q, k, v, p.causal, p.scale);
  out.backward(Tensor::from_vector(p.dout, qs, dtype));
  return {out.detach(), q.grad(), k.grad(), v.grad()};
}

// max |a - ref| / max |ref| (NaN anywhere in `a` fails).
double max_relative_error(const Tensor& a, const std::vector<double>& ref) {
  const auto va = a.to_vector<double>();
  if (va.size() != ref.size()) return INFINITY;
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < va.size(); ++i) {
    if (std::isnan(va[i])) return INFINITY;
    diff = std::max(diff, std::fabs(va[i] - ref[i]));
    scale = std::max(scale, std::fabs(ref[i]));
  }
  return diff / (scale + 1e-30);
}

double max_relative_error(const std::vector<double>& a, const std::vector<double>& ref) {
  return max_relative_error(Tensor::from_vector(a, {static_cast<int64_t>(a.size())}, DType::f64), ref);
}

TEST(AttentionTest, ForwardAndGradientsMatchFloat64Reference) {
  for (DType dtype : {DType::f64, DType::f32}) {
    const double tolerance = dtype == DType::f64 ? 1e-12 : 1e-5;
    uint64_t seed = 100;
    for (const Case& c : cases()) {
      const AttentionProblem p = random_problem(c, seed++);
      const AttentionResult ref = attention_reference(p);
      const OpResult ours = run_op(p, dtype);
      EXPECT_LE(max_relative_error(ours.out, ref.out), tolerance) << dtype_name(dtype) << " out " << describe(c);
      EXPECT_LE(max_relative_error(ours.dq, ref.dq), tolerance) << dtype_name(dtype) << " dq " << describe(c);
      EXPECT_LE(max_relative_error(ours.dk, ref.dk), tolerance) << dtype_name(dtype) << " dk " << describe(c);
      EXPECT_LE(max_relative_error(ours.dv, ref.dv), tolerance) << dtype_name(dtype) << " dv " << describe(c);
    }
  }
}

TEST(AttentionTest, LogSumExpMatchesReference) {
  for (const Case& c : {Case{1, 2, 1, 45, 70, 8, true}, Case{2, 1, 1, 40, 17, 8, true}, Case{1, 1, 1, 33, 9, 4, false}}) {
    const AttentionProblem p = random_problem(c, 7);
    const AttentionResult ref = attention_reference(p);
    const Tensor q = Tensor::from_vector(p.q, {c.batch, c.heads, c.q_len, c.head_dim}, DType::f64);
    const Tensor k = Tensor::from_vector(p.k, {c.batch, c.kv_heads, c.kv_len, c.head_dim}, DType::f64);
    const Tensor v = Tensor::from_vector(p.v, {c.batch, c.kv_heads, c.kv_len, c.head_dim}, DType::f64);
    Tensor out = Tensor::empty(q.shape(), DType::f64), lse = Tensor::empty({c.batch, c.heads, c.q_len}, DType::f64);
    kernels::AttentionArgs a;
    a.dtype = DType::f64;
    a.batch = c.batch;
    a.heads = c.heads;
    a.kv_heads = c.kv_heads;
    a.q_len = c.q_len;
    a.kv_len = c.kv_len;
    a.head_dim = c.head_dim;
    a.causal = c.causal;
    a.scale = p.scale;
    a.q = q.data_ptr();
    a.k = k.data_ptr();
    a.v = v.data_ptr();
    a.q_strides = {q.stride(0), q.stride(1), q.stride(2)};
    a.k_strides = a.v_strides = {k.stride(0), k.stride(1), k.stride(2)};
    a.out = out.data_ptr();
    a.out_strides = a.q_strides;
    a.lse = lse.data_ptr();
    kernels::attention_forward_cpu(a);
    const auto ours = lse.to_vector<double>();
    for (size_t i = 0; i < ours.size(); ++i) {
      if (std::isinf(ref.lse[i])) {
        EXPECT_TRUE(std::isinf(ours[i]) && ours[i] > 0) << describe(c) << " row " << i;
      } else {
        EXPECT_NEAR(ours[i], ref.lse[i], 1e-12) << describe(c) << " row " << i;
      }
    }
  }
}

// Low precision inputs: error at most twice that of a PyTorch-style bf16/f16 computation
// (the yardstick the CUDA kernels are held to as well).
TEST(AttentionTest, HalfPrecisionErrorWithinTwiceThePyTorchStyleReference) {
  for (DType dtype : {DType::bf16, DType::f16}) {
    uint64_t seed = 300;
    for (const Case& c : {Case{1, 2, 2, 37, 45, 16, false}, Case{1, 2, 1, 50, 77, 32, true}, Case{2, 1, 1, 1, 40, 8, true}}) {
      const AttentionProblem p = random_problem(c, seed++);
      const AttentionResult ref = attention_reference(p), lowp = attention_reference_lowp(p, dtype);
      const OpResult ours = run_op(p, dtype);
      const double eps = dtype == DType::bf16 ? 1e-3 : 1e-4;
      EXPECT_LE(max_relative_error(ours.out, ref.out), 2 * max_relative_error(lowp.out, ref.out) + eps)
          << dtype_name(dtype) << " out " << describe(c);
      EXPECT_LE(max_relative_error(ours.dq, ref.dq), 2 * max_relative_error(lowp.dq, ref.dq) + eps)
          << dtype_name(dtype) << " dq " << describe(c);
      EXPECT_LE(max_relative_error(ours.dk, ref.dk), 2 * max_relative_error(lowp.dk, ref.dk) + eps)
          << dtype_name(dtype) << " dk " << describe(c);
      EXPECT_LE(max_relative_error(ours.dv, ref.dv), 2 * max_relative_error(lowp.dv, ref.dv) + eps)
          << dtype_name(dtype) << " dv " << describe(c);
    }
  }
}

TEST(AttentionTest, PermutedOperandsMatchContiguousOnes) {
  Generator gen(5);
  const Tensor q = randn({2, 29, 3, 8}, 0, 1, DType::f32, Device::cpu(), &gen);  // [B, S, H, D]
  const Tensor k = randn({2, 41, 3, 8}, 0, 1, DType::f32, Device::cpu(), &gen);
  const Tensor v = randn({2, 41, 3, 8}, 0, 1, DType::f32, Device::cpu(), &gen);
  const Tensor strided = scaled_dot_product_attention(permute(q, {0, 2, 1, 3}), permute(k, {0, 2, 1, 3}),
                                                      permute(v, {0, 2, 1, 3}), true);
  const Tensor packed = scaled_dot_product_attention(permute(q, {0, 2, 1, 3}).contiguous(),
                                                     permute(k, {0, 2, 1, 3}).contiguous(),
                                                     permute(v, {0, 2, 1, 3}).contiguous(), true);
  EXPECT_EQ(strided.to_vector<float>(), packed.to_vector<float>());
}

TEST(AttentionTest, QueriesThatSeeNoKeyGetZerosAndZeroGradients) {
  // Causal with 40 queries and 17 keys: queries 0..22 see nothing.
  const AttentionProblem p = random_problem({1, 2, 2, 40, 17, 8, true}, 9);
  const OpResult ours = run_op(p, DType::f32);
  const auto out = ours.out.to_vector<double>(), dq = ours.dq.to_vector<double>();
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < 23; ++i)
      for (int64_t d = 0; d < 8; ++d) {
        EXPECT_EQ(out[(h * 40 + i) * 8 + d], 0.0);
        EXPECT_EQ(dq[(h * 40 + i) * 8 + d], 0.0);
      }
  for (double x : ours.dk.to_vector<double>()) EXPECT_TRUE(std::isfinite(x));
}

TEST(AttentionTest, NoKeysGiveZeroOutputAndGradients) {
  Tensor q = Tensor::ones({1, 1, 3, 4}), k = Tensor::ones({1, 1, 0, 4}), v = Tensor::ones({1, 1, 0, 4});
  q.set_requires_grad(true);
  const Tensor out = scaled_dot_product_attention(q, k, v, false);
  for (double x : out.to_vector<double>()) EXPECT_EQ(x, 0.0);
  out.sum().backward();
  for (double x : q.grad().to_vector<double>()) EXPECT_EQ(x, 0.0);
}

TEST(AttentionTest, ResultDoesNotDependOnThreadCount) {
  const AttentionProblem p = random_problem({1, 4, 2, 70, 90, 16, true}, 11);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const OpResult one = run_op(p, DType::f32);
  omp_set_num_threads(3);
  const OpResult three = run_op(p, DType::f32);
  omp_set_num_threads(threads);
  EXPECT_EQ(one.out.to_vector<float>(), three.out.to_vector<float>());
  EXPECT_EQ(one.dq.to_vector<float>(), three.dq.to_vector<float>());
  EXPECT_EQ(one.dk.to_vector<float>(), three.dk.to_vector<float>());
  EXPECT_EQ(one.dv.to_vector<float>(), three.dv.to_vector<float>());
}

TEST(AttentionTest, DoubleBackwardThrowsClearError) {
  Generator gen(3);
  Tensor q = randn({1, 1, 5, 4}, 0, 1, DType::f64, Device::cpu(), &gen);
  Tensor k = randn({1, 1, 6, 4}, 0, 1, DType::f64, Device::cpu(), &gen);
  q.set_requires_grad(true);
  const Tensor out = scaled_dot_product_attention(q, k, k, false);
  try {
    autograd::grad({out.sum()}, {q}, {}, std::nullopt, /*create_graph=*/true);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("double backward"), std::string::npos) << e.what();
  }
}

TEST(AttentionTest, RejectsInconsistentShapes) {
  const Tensor q = Tensor::zeros({1, 3, 4, 8}), k = Tensor::zeros({1, 2, 5, 8});
  EXPECT_THROW(scaled_dot_product_attention(q, k, k, false), Error);  // 3 heads over 2 kv heads
  const Tensor q2 = Tensor::zeros({1, 2, 4, 8});
  EXPECT_THROW(scaled_dot_product_attention(q2, k, Tensor::zeros({1, 2, 6, 8}), false), Error);  // k vs v
  EXPECT_THROW(scaled_dot_product_attention(q2, Tensor::zeros({1, 2, 5, 4}), Tensor::zeros({1, 2, 5, 4}), false),
               Error);  // head_dim
  EXPECT_THROW(scaled_dot_product_attention(q2, k, k, false, -1.0), Error);
  EXPECT_THROW(scaled_dot_product_attention(Tensor::zeros({2, 4, 8}), k, k, false), Error);
}

}  // namespace
}  // namespace tessera::testing
