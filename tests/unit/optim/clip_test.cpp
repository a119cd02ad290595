// clip_grad_norm: the global norm over all gradients, in-place scaling, skipped parameters.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/ops/ops.h"
#include "framework/optim/clip.h"

namespace tessera::optim {
namespace {

Tensor param_with_grad(const Tensor& grad) {
  Tensor p = Tensor::zeros(grad.shape(), grad.dtype());
  p.set_requires_grad(true);
  p.set_grad(grad);
  return p;
}

TEST(ClipGradNormTest, ScalesAllGradientsByTheGlobalNorm) {
  // Norm of {3, 4} and {12} is 13.
  Tensor a = param_with_grad(Tensor::from_vector(std::vector<double>{3, 4}, {2}, DType::f64));
  Tensor b = param_with_grad(Tensor::from_vector(std::vector<double>{12}, {1}, DType::f64));
  Tensor frozen = Tensor::ones({2});
  const Tensor norm = clip_grad_norm({a, frozen, b}, 6.5);
  EXPECT_EQ(norm.dim(), 0);
  EXPECT_EQ(norm.dtype(), DType::f32);
  EXPECT_FLOAT_EQ(static_cast<float>(norm.item()), 13.0f);
  const double coef = 6.5 / (13.0 + 1e-6);
  const auto ga = a.grad().to_vector<double>();
  EXPECT_NEAR(ga[0], 3 * coef, 1e-6);
  EXPECT_NEAR(ga[1], 4 * coef, 1e-6);
  EXPECT_NEAR(b.grad().to_vector<double>()[0], 12 * coef, 1e-6);
  EXPECT_FALSE(frozen.grad().defined());
}

TEST(ClipGradNormTest, SmallNormLeavesGradientsAlone) {
  const std::vector<double> values = {0.1, -0.2, 0.3};
  Tensor a = param_with_grad(Tensor::from_vector(values, {3}, DType::f64));
  const Tensor norm = clip_grad_norm({a}, 10.0);
  EXPECT_NEAR(norm.item(), std::sqrt(0.14), 1e-7);
  EXPECT_EQ(a.grad().to_vector<double>(), values);
}

TEST(ClipGradNormTest, LargeMixedDtypeGradientsMatchDoubleReference) {
  // Several chunks per tensor (kNormChunk = 16384), two dtypes.
  Generator gen(5);
  Tensor a = param_with_grad(randn({40000}, 0, 1, DType::f32, Device::cpu(), &gen));
  Tensor b = param_with_grad(randn({300, 70}, 0, 2, DType::bf16, Device::cpu(), &gen));
  Tensor c = param_with_grad(randn({7}, 0, 1, DType::f64, Device::cpu(), &gen));
  double sum = 0;
  for (const Tensor& p : {a, b, c})
    for (double v : p.grad().to_vector<double>()) sum += v * v;
  const double expected = std::sqrt(sum);
  const auto a_before = a.grad().to_vector<double>();
  const Tensor norm = clip_grad_norm({a, b, c}, 1.0);
  EXPECT_NEAR(norm.item(), expected, expected * 1e-6);
  const double coef = 1.0 / (expected + 1e-6);
  const auto a_after = a.grad().to_vector<double>();
  for (size_t i = 0; i < a_after.size(); i += 997) EXPECT_NEAR(a_after[i], a_before[i] * coef, 1e-6);
  // The clipped gradients now have norm ~1.
  double clipped = 0;
  for (const Tensor& p : {a, b, c})
    for (double v : p.grad().to_vector<double>()) clipped += v * v;
  EXPECT_NEAR(std::sqrt(clipped), 1.0, 5e-3);  // bf16 rounding of b
}

TEST(ClipGradNormTest, NonContiguousGradientIsScaledInPlace) {
  Tensor p = Tensor::zeros({2, 3});
  p.set_requires_grad(true);
  const Tensor base = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {3, 2});
  p.set_grad(base.transpose(0, 1));  // a strided view
  const Tensor norm = clip_grad_norm({p}, std::sqrt(91.0) / 2);
  EXPECT_NEAR(norm.item(), std::sqrt(91.0), 1e-5);
  const auto g = p.grad().to_vector<double>();
  EXPECT_NEAR(g[0], 0.5, 1e-6);
  EXPECT_NEAR(g[1], 1.5, 1e-6);
  EXPECT_NEAR(base.to_vector<double>()[5], 3.0, 1e-6);  // the view's storage was updated
}

TEST(ClipGradNormTest, NoGradientsGiveZeroAndBadMaxNormIsAnError) {
  Tensor p = Tensor::zeros({2});
  EXPECT_EQ(clip_grad_norm({p}, 1.0).item(), 0.0);
  EXPECT_THROW(clip_grad_norm({p}, -1.0), Error);
  EXPECT_THROW(clip_grad_norm({p}, std::nan("")), Error);
}

}  // namespace
}  // namespace tessera::optim
