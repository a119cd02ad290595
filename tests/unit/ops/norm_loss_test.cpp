// Behaviour of layer_norm, rms_norm, softmax, log_softmax and the losses against values
// computed by hand (gradients against finite differences live in the op table:
// tests/common/op_cases_norm.cpp).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>

#include "framework/ops/ops.h"
#include "tests/common/op_table.h"

namespace tessera {
namespace {

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

Tensor indices(const std::vector<int64_t>& v, const Shape& shape) { return Tensor::from_vector(v, shape); }

// The message of the tessera::Error thrown by fn ("" if none).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

Tensor grad_of(const Tensor& loss, const Tensor& x) { return autograd::grad({loss}, {x})[0]; }

// ---- cross_entropy ----

TEST(CrossEntropyTest, UniformLogitsGiveLogOfClassCount) {
  const Tensor logits = Tensor::zeros({4, 10});
  const Tensor loss = cross_entropy(logits, indices({0, 3, 9, 5}, {4}));
  EXPECT_EQ(loss.dim(), 0);
  EXPECT_NEAR(loss.item(), std::log(10.0), 1e-6);
}

TEST(CrossEntropyTest, LabelSmoothingMatchesHandComputedTwoClassValue) {
  // logits [0, ln 3]: p = [1/4, 3/4]. Target 0, eps = 0.2:
  //   0.8 * (-ln 1/4) + 0.2 * (-ln 1/4 - ln 3/4) / 2
  const Tensor logits = Tensor::from_vector(std::vector<double>{0.0, std::log(3.0)}, {1, 2}, DType::f64);
  const double expected = 0.8 * std::log(4.0) + 0.1 * (std::log(4.0) + std::log(4.0 / 3.0));
  EXPECT_NEAR(cross_entropy(logits, indices({0}, {1}), -100, 0.2).item(), expected, 1e-12);
  // eps = 1: the target no longer matters, the loss is the mean over classes of -log p.
  const double uniform = 0.5 * (std::log(4.0) + std::log(4.0 / 3.0));
  EXPECT_NEAR(cross_entropy(logits, indices({1}, {1}), -100, 1.0).item(), uniform, 1e-12);
}

TEST(CrossEntropyTest, IgnoredTargetsAreExcludedFromTheMeanAndGetNoGradient) {
  Tensor logits = Tensor::from_vector(std::vector<double>{1, 2, 3, 0, 0, 5, -1, 4, 2}, {3, 3}, DType::f64);
  logits.set_requires_grad(true);
  const Tensor targets = indices({2, -100, 1}, {3});
  const Tensor loss = cross_entropy(logits, targets);
  auto nll = [](double a, double b, double c, double target) {
    return std::log(std::exp(a) + std::exp(b) + std::exp(c)) - target;
  };
  const double row0 = nll(1, 2, 3, 3), row2 = nll(-1, 4, 2, 4);
  EXPECT_NEAR(loss.item(), (row0 + row2) / 2.0, 1e-12);

  const std::vector<double> per_target = values(cross_entropy(logits, targets, -100, 0.0, Reduction::none));
  EXPECT_NEAR(per_target[0], row0, 1e-12);
  EXPECT_EQ(per_target[1], 0.0);
  EXPECT_NEAR(per_target[2], row2, 1e-12);

  const std::vector<double> g = values(grad_of(loss, logits));
  for (int c = 0; c < 3; ++c) EXPECT_EQ(g[3 + c], 0.0) << "class " << c;
  // A kept row: (softmax - onehot) / 2 kept rows.
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(g[0], std::exp(1.0) / z / 2.0, 1e-12);
  EXPECT_NEAR(g[2], (std::exp(3.0) / z - 1.0) / 2.0, 1e-12);
}

TEST(CrossEntropyTest, AllTargetsIgnoredGiveZeroLossNotNaN) {
  Tensor logits = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2});
  logits.set_requires_grad(true);
  const Tensor loss = cross_entropy(logits, indices({-100, -100}, {2}));
  EXPECT_EQ(loss.item(), 0.0);
  for (double v : values(grad_of(loss, logits))) EXPECT_EQ(v, 0.0);
}

TEST(CrossEntropyTest, SumAddsRowLosses) {
  const Tensor logits = Tensor::from_vector(std::vector<double>{0, 0, 0, 1, 1, 1}, {2, 3});
  EXPECT_NEAR(cross_entropy(logits, indices({0, 2}, {2}), -100, 0.0, Reduction::sum).item(), 2.0 * std::log(3.0),
              1e-6);
}

TEST(CrossEntropyTest, ClassesAreTheLastDimension) {
  Generator gen(3);
  const Tensor logits = randn({2, 3, 5}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);
  const Tensor targets = randint({2, 3}, 0, 5, DType::i64, Device::cpu(), &gen);
  const double batched = cross_entropy(logits, targets).item();
  const double flat = cross_entropy(logits.reshape({6, 5}), targets.reshape({6})).item();
  EXPECT_FLOAT_EQ(batched, flat);
}

TEST(CrossEntropyTest, Int32TargetsMatchInt64) {
  Generator gen(4);
  const Tensor logits = randn({8, 7}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);
  const Tensor targets = randint({8}, 0, 7, DType::i64, Device::cpu(), &gen);
  const Tensor targets32 = Tensor::from_vector(targets.to_vector<double>(), {8}, DType::i32);
  EXPECT_EQ(cross_entropy(logits, targets).item(), cross_entropy(logits, targets32).item());
}

TEST(CrossEntropyTest, Bf16LogitsAgreeWithF32) {
  Generator gen(5);
  const Tensor logits = randn({16, 33}, 0.0, 2.0, DType::f32, Device::cpu(), &gen);
  const Tensor targets = randint({16}, 0, 33, DType::i64, Device::cpu(), &gen);
  const Tensor half = logits.to(DType::bf16);
  const Tensor loss = cross_entropy(half, targets, -100, 0.1);
  EXPECT_EQ(loss.dtype(), DType::bf16);
  // the bf16 logits, widened exactly, are the reference input
  const double reference = cross_entropy(half.to(DType::f64), targets, -100, 0.1).item();
  EXPECT_NEAR(loss.item(), reference, 1e-2 * std::fabs(reference));
}

TEST(CrossEntropyTest, OutOfRangeTargetErrorNamesValueAndClassCount) {
  const Tensor logits = Tensor::zeros({2, 5});
  const std::string message = error_of([&] { cross_entropy(logits, indices({0, 7}, {2})); });
  EXPECT_NE(message.find("target 7"), std::string::npos) << message;
  EXPECT_NE(message.find("5 classes"), std::string::npos) << message;
  const std::string negative = error_of([&] { cross_entropy(logits, indices({-3, 0}, {2})); });
  EXPECT_NE(negative.find("target -3"), std::string::npos) << negative;
}

TEST(CrossEntropyTest, TargetShapeMismatchNamesOpAndBothShapes) {
  const std::string message = error_of([] { cross_entropy(Tensor::zeros({4, 5}), indices({0, 1, 2}, {3})); });
  EXPECT_NE(message.find("cross_entropy"), std::string::npos) << message;
  EXPECT_NE(message.find("[4, 5]"), std::string::npos) << message;
  EXPECT_NE(message.find("[3]"), std::string::npos) << message;
}

TEST(CrossEntropyTest, FloatTargetsAreRejected) {
  const std::string message = error_of([] { cross_entropy(Tensor::zeros({2, 3}), Tensor::zeros({2})); });
  EXPECT_NE(message.find("i64 or i32"), std::string::npos) << message;
}

// ---- layer_norm / rms_norm ----

TEST(LayerNormTest, RowsHaveZeroMeanAndUnitVariance) {
  Generator gen(6);
  const Tensor x = affine(randn({5, 64}, 0.0, 1.0, DType::f32, Device::cpu(), &gen), 4.0, 30.0);
  const std::vector<double> y = values(layer_norm(x, Tensor(), Tensor()));
  for (int r = 0; r < 5; ++r) {
    double sum = 0, squares = 0;
    for (int c = 0; c < 64; ++c) sum += y[r * 64 + c];
    const double mean = sum / 64;
    for (int c = 0; c < 64; ++c) squares += (y[r * 64 + c] - mean) * (y[r * 64 + c] - mean);
    EXPECT_NEAR(mean, 0.0, 1e-5) << "row " << r;
    EXPECT_NEAR(squares / 64, 1.0, 1e-4) << "row " << r;  // biased variance, as torch
  }
}

TEST(LayerNormTest, AffineScalesAndShiftsTheNormalisedRows) {
  const Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, -2, 0, 2, 4}, {2, 4}, DType::f64);
  const Tensor w = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {4}, DType::f64);
  const Tensor b = Tensor::from_vector(std::vector<double>{0, -1, 1, 0.5}, {4}, DType::f64);
  const std::vector<double> y = values(layer_norm(x, w, b, 0.0));
  // row 0: mean 2.5, variance 1.25
  const double rstd = 1.0 / std::sqrt(1.25);
  EXPECT_NEAR(y[0], (1 - 2.5) * rstd * 1 + 0, 1e-12);
  EXPECT_NEAR(y[3], (4 - 2.5) * rstd * 4 + 0.5, 1e-12);
  // row 1 is row 0 scaled by 4 about another mean: the same normalised values
  EXPECT_NEAR(y[4], y[0], 1e-12);
  EXPECT_NEAR(y[6], y[2], 1e-12);
}

TEST(LayerNormTest, LargeOffsetKeepsPrecision) {
  // x = 1e4 + small noise: a one-pass E[x^2] - E[x]^2 in float would lose the variance.
  const Tensor x = Tensor::from_vector(std::vector<double>{10000.0, 10000.5, 9999.5, 10000.0}, {1, 4});
  const std::vector<double> y = values(layer_norm(x, Tensor(), Tensor(), 0.0));
  const double rstd = 1.0 / std::sqrt(0.125);
  EXPECT_NEAR(y[1], 0.5 * rstd, 1e-4);
  EXPECT_NEAR(y[2], -0.5 * rstd, 1e-4);
}

TEST(LayerNormTest, WeightShapeMismatchNamesOpAndShapes) {
  const std::string message =
      error_of([] { layer_norm(Tensor::zeros({3, 8}), Tensor::ones({6}), Tensor()); });
  EXPECT_NE(message.find("layer_norm"), std::string::npos) << message;
  EXPECT_NE(message.find("[6]"), std::string::npos) << message;
  EXPECT_NE(message.find("[3, 8]"), std::string::npos) << message;
}

TEST(LayerNormTest, WeightGradientDoesNotDependOnThreadCount) {
  Generator gen(7);
  Tensor x = randn({3000, 24}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);
  Tensor w = randn({24}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);
  Tensor b = randn({24}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);
  const Tensor v = randn({3000, 24}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  x.set_requires_grad(true);
  auto gradients = [&] {
    const auto g = autograd::grad({sum(mul(layer_norm(x, w, b), v))}, {x, w, b});
    return std::vector<std::vector<float>>{g[0].to_vector<float>(), g[1].to_vector<float>(), g[2].to_vector<float>()};
  };
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one = gradients();
  omp_set_num_threads(std::max(2, threads));
  const auto many = gradients();
  omp_set_num_threads(threads);
  EXPECT_EQ(one, many);  // bitwise
}

TEST(LayerNormTest, Bf16InputMatchesF32WithinBf16Rounding) {
  Generator gen(8);
  const Tensor x = randn({6, 40}, 2.0, 3.0, DType::f32, Device::cpu(), &gen).to(DType::bf16);
  const Tensor w = randn({40}, 1.0, 0.2, DType::f32, Device::cpu(), &gen).to(DType::bf16);
  const Tensor y = layer_norm(x, w, Tensor());
  EXPECT_EQ(y.dtype(), DType::bf16);
  const std::vector<double> ref = values(layer_norm(x.to(DType::f32), w.to(DType::f32), Tensor()));
  const std::vector<double> got = values(y);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-2 * (1.0 + std::fabs(ref[i]))) << i;
}

TEST(LayerNormTest, CreateGraphGradientHasHistory) {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 3, 2, 5}, {2, 2}, DType::f64);
  x.set_requires_grad(true);
  const Tensor y = layer_norm(x, Tensor(), Tensor());
  const Tensor g = autograd::grad({sum(mul(y, y))}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
  EXPECT_TRUE(g.requires_grad());
}

TEST(RmsNormTest, MatchesFormula) {
  const Tensor x = Tensor::from_vector(std::vector<double>{3, 4, 0, -2}, {2, 2}, DType::f64);
  const Tensor w = Tensor::from_vector(std::vector<double>{2, 0.5}, {2}, DType::f64);
  const std::vector<double> y = values(rms_norm(x, w, 1e-6));
  const double r0 = 1.0 / std::sqrt(12.5 + 1e-6), r1 = 1.0 / std::sqrt(2.0 + 1e-6);
  EXPECT_NEAR(y[0], 3 * r0 * 2, 1e-12);
  EXPECT_NEAR(y[1], 4 * r0 * 0.5, 1e-12);
  EXPECT_NEAR(y[2], 0.0, 1e-12);
  EXPECT_NEAR(y[3], -2 * r1 * 0.5, 1e-12);
}

// ---- softmax / log_softmax ----

TEST(SoftmaxTest, RowsSumToOne) {
  Generator gen(9);
  const Tensor x = randn({7, 13}, 0.0, 3.0, DType::f32, Device::cpu(), &gen);
  const std::vector<double> y = values(softmax(x, -1));
  for (int r = 0; r < 7; ++r) {
    double total = 0;
    for (int c = 0; c < 13; ++c) total += y[r * 13 + c];
    EXPECT_NEAR(total, 1.0, 1e-6) << "row " << r;
  }
}

TEST(SoftmaxTest, LargeLogitsAreStable) {
  const Tensor x = Tensor::from_vector(std::vector<double>{1e4, 1e4 - 1.0, 1e4 - 2.0, -1e4}, {1, 4});
  const std::vector<double> y = values(softmax(x, 1));
  const double z = 1.0 + std::exp(-1.0) + std::exp(-2.0);
  EXPECT_NEAR(y[0], 1.0 / z, 1e-6);
  EXPECT_NEAR(y[1], std::exp(-1.0) / z, 1e-6);
  EXPECT_EQ(y[3], 0.0);
  const std::vector<double> logy = values(log_softmax(x, 1));
  EXPECT_NEAR(logy[0], -std::log(z), 1e-3);  // float spacing at 1e4 is ~1e-3
  EXPECT_TRUE(std::isfinite(logy[3]));
  EXPECT_NEAR(cross_entropy(x, indices({0}, {1})).item(), std::log(z), 1e-3);
}

TEST(SoftmaxTest, MiddleDimensionMatchesLastDimensionOfTransposedInput) {
  Generator gen(10);
  const Tensor x = randn({3, 5, 4}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);
  const std::vector<double> middle = values(softmax(x, 1));
  const std::vector<double> via_last = values(softmax(x.transpose(1, 2), -1).transpose(1, 2).contiguous());
  ASSERT_EQ(middle.size(), via_last.size());
  for (size_t i = 0; i < middle.size(); ++i) EXPECT_NEAR(middle[i], via_last[i], 1e-6) << i;
}

TEST(SoftmaxTest, LogSoftmaxIsLogOfSoftmax) {
  Generator gen(11);
  const Tensor x = randn({4, 6}, 0.0, 2.0, DType::f64, Device::cpu(), &gen);
  const std::vector<double> a = values(log_softmax(x, 0)), b = values(log(softmax(x, 0)));
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-12) << i;
}

TEST(SoftmaxTest, BadDimensionNamesOp) {
  const std::string message = error_of([] { softmax(Tensor::zeros({2, 3}), 2); });
  EXPECT_NE(message.find("softmax"), std::string::npos) << message;
}

// ---- mse / l1 / binary cross-entropy with logits ----

TEST(RegressionLossTest, MseAndL1MatchHandValues) {
  const Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2});
  const Tensor b = Tensor::from_vector(std::vector<double>{0, 2, 5, 3}, {2, 2});
  EXPECT_NEAR(mse_loss(a, b).item(), (1 + 0 + 4 + 1) / 4.0, 1e-6);
  EXPECT_NEAR(mse_loss(a, b, Reduction::sum).item(), 6.0, 1e-6);
  EXPECT_EQ(values(l1_loss(a, b, Reduction::none)), (std::vector<double>{1, 0, 2, 1}));
  EXPECT_NEAR(l1_loss(a, b).item(), 1.0, 1e-6);
}

TEST(RegressionLossTest, ShapeMismatchNamesOpAndBothShapes) {
  const std::string message = error_of([] { mse_loss(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})); });
  EXPECT_NE(message.find("mse_loss"), std::string::npos) << message;
  EXPECT_NE(message.find("[2, 3]"), std::string::npos) << message;
  EXPECT_NE(message.find("[3, 2]"), std::string::npos) << message;
  const std::string bce = error_of([] { binary_cross_entropy_with_logits(Tensor::zeros({4}), Tensor::zeros({2, 2})); });
  EXPECT_NE(bce.find("binary_cross_entropy_with_logits"), std::string::npos) << bce;
}

TEST(BceWithLogitsTest, LargeLogitsAreStable) {
  const Tensor x = Tensor::from_vector(std::vector<double>{100, -100, 100, -100, 0}, {5});
  const Tensor t = Tensor::from_vector(std::vector<double>{0, 1, 1, 0, 1}, {5});
  const std::vector<double> loss = values(binary_cross_entropy_with_logits(x, t, Reduction::none));
  EXPECT_NEAR(loss[0], 100.0, 1e-4);
  EXPECT_NEAR(loss[1], 100.0, 1e-4);
  EXPECT_NEAR(loss[2], 0.0, 1e-6);
  EXPECT_NEAR(loss[3], 0.0, 1e-6);
  EXPECT_NEAR(loss[4], std::log(2.0), 1e-6);
}

TEST(BceWithLogitsTest, GradientAtZeroIsHalfMinusTarget) {
  Tensor x = Tensor::zeros({3}, DType::f64);
  x.set_requires_grad(true);
  const Tensor t = Tensor::from_vector(std::vector<double>{0.0, 1.0, 0.25}, {3}, DType::f64);
  const std::vector<double> g = values(grad_of(binary_cross_entropy_with_logits(x, t, Reduction::sum), x));
  EXPECT_NEAR(g[0], 0.5, 1e-12);
  EXPECT_NEAR(g[1], -0.5, 1e-12);
  EXPECT_NEAR(g[2], 0.25, 1e-12);
}

// ---- the two backward paths ----

// gradgradcheck differentiates the create_graph gradient on both of its sides, so it cannot
// notice a composite backward that differs from the true gradient. Compare the composite
// (create_graph) gradients of this family's table entries with the fused ones here.
TEST(NormLossBackwardTest, CreateGraphGradientsMatchFusedGradients) {
  int checked = 0;
  for (const testing::OpTestCase& c : testing::op_test_table()) {
    bool ours = false;
    for (const char* prefix : {"layer_norm", "rms_norm", "softmax", "log_softmax", "cross_entropy", "mse_loss",
                               "l1_loss", "bce_with_logits"})
      ours = ours || c.name.rfind(prefix, 0) == 0;
    if (!ours) continue;
    auto gradients = [&](bool create_graph) {
      Generator gen(31);
      const testing::InputMaker maker{DType::f64, Device::cpu(), &gen};
      std::vector<Tensor> inputs = c.inputs(maker), wrt;
      for (Tensor& t : inputs)
        if (is_floating_point(t.dtype())) wrt.push_back(t.set_requires_grad(true));
      const Tensor out = c.forward(inputs);
      Generator vgen(32);
      const Tensor v = randn(out.shape(), 0.0, 1.0, DType::f64, Device::cpu(), &vgen);
      return autograd::grad({sum(mul(out, v))}, wrt, {}, std::nullopt, create_graph, /*allow_unused=*/true);
    };
    const std::vector<Tensor> fused = gradients(false), composite = gradients(true);
    ASSERT_EQ(fused.size(), composite.size()) << c.name;
    for (size_t k = 0; k < fused.size(); ++k) {
      ASSERT_EQ(fused[k].defined(), composite[k].defined()) << c.name << " input " << k;
      if (!fused[k].defined()) continue;
      // The gradient of the first input depends on the inputs; it must carry history. (A bias
      // gradient, sum(g), rightly has none.)
      if (c.second_order && k == 0) EXPECT_TRUE(composite[k].requires_grad()) << c.name << " has no history";
      EXPECT_LT(testing::relative_error(composite[k], fused[k]), 1e-10) << c.name << " input " << k;
    }
    ++checked;
  }
  EXPECT_GE(checked, 15);
}

}  // namespace
}  // namespace tessera
