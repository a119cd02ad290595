// The backward pass: accumulation, hooks, grad mode, second derivatives.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/ops/ops.h"

namespace tessera {
namespace {

Tensor leaf(std::vector<float> values, Shape shape) {
  Tensor t = Tensor::from_vector(values, shape);
  t.set_requires_grad(true);
  return t;
}

TEST(AutogradTest, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = leaf({1, 2, 3}, {3});
  sum(mul(x, x)).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{2, 4, 6}));
  sum(mul(x, x)).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{4, 8, 12}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(AutogradTest, ReusedInputSumsItsGradients) {
  Tensor x = leaf({2}, {1});
  Tensor y = add(mul(x, x), x * 3.0);  // dy/dx = 2x + 3
  y.sum().backward();
  EXPECT_EQ(x.grad().item(), 7.0);
}

TEST(AutogradTest, GradReadyHookFiresOnceWithTheFinalGradient) {
  Tensor w = leaf({1, 1}, {2});
  std::vector<std::vector<float>> seen;
  w.register_grad_ready_hook([&](const Tensor& p) { seen.push_back(p.grad().to_vector<float>()); });
  Tensor y = add(w * 2.0, mul(w, w));  // w used twice: one final gradient
  y.sum().backward();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], (std::vector<float>{4, 4}));
}

TEST(AutogradTest, HooksFireInReverseOrderOfUse) {
  Tensor a = leaf({1}, {1}), b = leaf({1}, {1}), c = leaf({1}, {1});
  std::vector<char> order;
  a.register_grad_ready_hook([&](const Tensor&) { order.push_back('a'); });
  b.register_grad_ready_hook([&](const Tensor&) { order.push_back('b'); });
  c.register_grad_ready_hook([&](const Tensor&) { order.push_back('c'); });
  Tensor h = a * 2.0;
  h = mul(h, b);
  h = mul(h, c);
  h.sum().backward();
  EXPECT_EQ(order, (std::vector<char>{'c', 'b', 'a'}));
}

TEST(AutogradTest, NoGradGuardAndDetachStopHistory) {
  Tensor x = leaf({1, 2}, {2});
  {
    NoGradGuard guard;
    EXPECT_FALSE(mul(x, x).requires_grad());
  }
  EXPECT_TRUE(mul(x, x).requires_grad());
  EXPECT_FALSE(x.detach().requires_grad());
  EXPECT_THROW(sum(x.detach()).backward(), Error);
}

TEST(AutogradTest, GradReturnsInputGradientsWithoutTouchingLeaves) {
  Tensor x = leaf({3}, {1}), w = leaf({2}, {1});
  Tensor y = mul(mul(x, x), w);  // dy/dx = 2xw = 12
  const auto g = autograd::grad({y.sum()}, {x});
  EXPECT_EQ(g[0].item(), 12.0);
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined());
}

TEST(AutogradTest, CreateGraphGivesSecondDerivatives) {
  Tensor x = leaf({2}, {1});
  Tensor y = mul(mul(x, x), x);  // x^3: dy = 3x^2 = 12, d2y = 6x = 12
  const auto g = autograd::grad({y.sum()}, {x}, {}, std::nullopt, /*create_graph=*/true);
  EXPECT_EQ(g[0].item(), 12.0);
  ASSERT_TRUE(g[0].requires_grad());
  g[0].sum().backward();
  EXPECT_EQ(x.grad().item(), 12.0);
}

TEST(AutogradTest, GradientPenaltyOfACritic) {
  // WGAN-GP's pattern: penalty = (||d critic / d x|| - 1)^2, then backward to the weights.
  Tensor w = leaf({0.5f, -1.0f}, {1, 2});
  Tensor x = leaf({1.0f, 2.0f}, {1, 2});
  Tensor critic = linear(tanh(x), w);
  const auto g = autograd::grad({critic.sum()}, {x}, {}, std::nullopt, true);
  Tensor norm = sqrt(sum(square(g[0])));
  Tensor penalty = square(norm - 1.0);
  penalty.backward();
  ASSERT_TRUE(w.grad().defined());
  // Finite-difference check of d penalty / d w0.
  auto penalty_at = [&](float w0) {
    const double t1 = std::tanh(1.0), t2 = std::tanh(2.0);
    const double g1 = w0 * (1 - t1 * t1), g2 = -1.0 * (1 - t2 * t2);
    const double n = std::sqrt(g1 * g1 + g2 * g2);
    return (n - 1) * (n - 1);
  };
  const double numeric = (penalty_at(0.5f + 1e-3f) - penalty_at(0.5f - 1e-3f)) / 2e-3;
  EXPECT_NEAR(w.grad().to_vector<double>()[0], numeric, 1e-3);
}

TEST(AutogradTest, NonScalarBackwardNeedsAGradient) {
  Tensor x = leaf({1, 2}, {2});
  EXPECT_THROW(mul(x, x).backward(), Error);
  mul(x, x).backward(Tensor::ones({2}));
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{2, 4}));
}

}  // namespace
}  // namespace tessera
