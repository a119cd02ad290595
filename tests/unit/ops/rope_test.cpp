// rope (framework/ops/rope.h): the rotation against the formula evaluated in double, the
// tables' angles, the inverse undoing the forward, strided inputs and argument errors.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/core/error.h"
#include "framework/ops/ops.h"
#include "tests/common/op_table.h"

namespace tessera::testing {
namespace {

// out[b, t, h, i] by the rotate-half formula with angles (first + t) * theta^(-2i/D), in double.
std::vector<double> reference(const Tensor& x, int64_t first, double theta) {
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), D = x.size(3), half = D / 2;
  const std::vector<double> v = x.contiguous().to_vector<double>();
  std::vector<double> out(v.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < half; ++i) {
          const int64_t row = ((b * T + t) * H + h) * D;
          const double angle = static_cast<double>(first + t) * std::pow(theta, -2.0 * i / static_cast<double>(D));
          const double x1 = v[row + i], x2 = v[row + i + half];
          out[row + i] = x1 * std::cos(angle) - x2 * std::sin(angle);
          out[row + i + half] = x2 * std::cos(angle) + x1 * std::sin(angle);
        }
  return out;
}

TEST(RopeTest, MatchesRotateHalfFormulaAtOffsetPositions) {
  Generator gen(7);
  const Tensor x = randn({2, 5, 3, 8}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);
  const RopeTables t = rope_tables(20, 8, 500.0);
  const Tensor y = rope(x, t.cos.slice(0, 11, 16), t.sin.slice(0, 11, 16));
  EXPECT_EQ(y.shape(), x.shape());
  const std::vector<double> got = y.to_vector<double>(), want = reference(x, 11, 500.0);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-6) << "element " << i;
}

TEST(RopeTest, PositionZeroIsTheIdentity) {
  const Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {1, 1, 1, 6});
  const RopeTables t = rope_tables(1, 6);
  EXPECT_EQ(rope(x, t.cos, t.sin).to_vector<float>(), x.to_vector<float>());
}

TEST(RopeTest, InverseUndoesTheRotation) {
  Generator gen(3);
  const Tensor x = randn({1, 9, 2, 16}, 0.0, 1.0, DType::f64, Device::cpu(), &gen);
  const RopeTables t = rope_tables(9, 16);
  const Tensor back = rope(rope(x, t.cos, t.sin), t.cos, t.sin, /*inverse=*/true);
  EXPECT_LT(relative_error(back, x), 1e-6);
}

TEST(RopeTest, StridedSliceOfFusedProjectionEqualsContiguousCopy) {
  Generator gen(5);
  const Tensor qkv = randn({2, 4, 3 * 16}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);
  const Tensor k = qkv.slice(2, 16, 32).reshape({2, 4, 2, 8});
  ASSERT_FALSE(k.is_contiguous());
  const RopeTables t = rope_tables(4, 8);
  EXPECT_EQ(rope(k, t.cos, t.sin).to_vector<float>(), rope(k.contiguous(), t.cos, t.sin).to_vector<float>());
}

TEST(RopeTest, Bf16RoundsOncePerElement) {
  Generator gen(9);
  const Tensor x = randn({1, 6, 2, 8}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);
  const RopeTables t = rope_tables(6, 8);
  const Tensor y16 = rope(x.to(DType::bf16), t.cos, t.sin);
  const Tensor y32 = rope(x.to(DType::bf16).to(DType::f32), t.cos, t.sin);
  EXPECT_EQ(y16.dtype(), DType::bf16);
  EXPECT_EQ(y16.to_vector<float>(), y32.to(DType::bf16).to_vector<float>());
}

TEST(RopeTest, ArgumentErrorsNameTheProblem) {
  const RopeTables t = rope_tables(4, 8);
  auto message = [](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(message([&] { rope(Tensor::zeros({1, 4, 2, 7}), t.cos, t.sin); }).find("even head_dim"), std::string::npos);
  EXPECT_NE(message([&] { rope(Tensor::zeros({1, 5, 2, 8}), t.cos, t.sin); }).find("[seq, head_dim / 2] = [5, 4]"),
            std::string::npos);
  const Tensor learned = Tensor::zeros({4, 4}).set_requires_grad(true);
  EXPECT_NE(message([&] { rope(Tensor::zeros({1, 4, 2, 8}), learned, t.sin); }).find("must not require a gradient"),
            std::string::npos);
}

}  // namespace
}  // namespace tessera::testing
