// Layers built on other op families: Embedding, LayerNorm, RMSNorm, Dropout, and the MLP
// that combines them.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/nn/layers.h"
#include "framework/ops/ops.h"

namespace tessera::nn {
namespace {

std::vector<std::string> parameter_names(const Module& m) {
  std::vector<std::string> names;
  for (const auto& [k, _] : m.named_parameters()) names.push_back(k);
  return names;
}

TEST(EmbeddingTest, LooksUpRowsAndInitialisesStandardNormal) {
  Generator gen(2);
  Embedding e(1000, 16, &gen);
  EXPECT_EQ(e.weight().shape(), (Shape{1000, 16}));
  double mean = 0, sq = 0;
  const auto w = e.weight().to_vector<double>();
  for (double v : w) {
    mean += v / w.size();
    sq += v * v / w.size();
  }
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(std::sqrt(sq - mean * mean), 1.0, 0.02);
  const Tensor idx = Tensor::from_vector(std::vector<int64_t>{3, 999, 3, 0, 5, 7}, {2, 3});
  const Tensor y = e(idx);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 16}));
  const auto out = y.to_vector<double>();
  for (int64_t j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], w[3 * 16 + j]);
    EXPECT_EQ(out[16 + j], w[999 * 16 + j]);
  }
  y.sum().backward();
  const auto g = e.weight().grad().to_vector<double>();
  EXPECT_EQ(g[3 * 16], 2.0);  // row 3 used twice
  EXPECT_EQ(g[1 * 16], 0.0);
}

TEST(LayerNormTest, NormalisesLastDimAndAppliesAffine) {
  LayerNorm ln(4);
  EXPECT_EQ(parameter_names(ln), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(ln.weight().to_vector<double>(), std::vector<double>(4, 1.0));
  EXPECT_EQ(ln.bias().to_vector<double>(), std::vector<double>(4, 0.0));
  ln.load_state_dict({{"weight", Tensor::from_vector(std::vector<double>{1, 2, 1, 1}, {4})},
                      {"bias", Tensor::from_vector(std::vector<double>{0, 0, 0, 0.5}, {4})}});
  ln.to(DType::f64);
  const Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, -1, -1, -1, -1}, {2, 4}, DType::f64);
  const auto y = ln(x).to_vector<double>();
  const double rstd = 1.0 / std::sqrt(1.25 + 1e-5);
  EXPECT_NEAR(y[0], -1.5 * rstd, 1e-12);
  EXPECT_NEAR(y[1], 2 * -0.5 * rstd, 1e-12);
  EXPECT_NEAR(y[3], 1.5 * rstd + 0.5, 1e-12);
  EXPECT_NEAR(y[4], 0.0, 1e-12);  // constant row
  EXPECT_THROW(ln(Tensor::ones({2, 3}, DType::f64)), Error);
  LayerNorm plain(4, 1e-5, /*affine=*/false);
  EXPECT_TRUE(plain.named_parameters().empty());
  EXPECT_NEAR(plain(Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {4})).to_vector<double>()[0], -1.5 * rstd,
              1e-6);
}

TEST(RMSNormTest, DividesByRootMeanSquare) {
  RMSNorm n(2, 0.0);
  EXPECT_EQ(parameter_names(n), (std::vector<std::string>{"weight"}));
  const auto y = n(Tensor::from_vector(std::vector<double>{3, 4}, {1, 2}, DType::f32)).to_vector<double>();
  const double rms = std::sqrt(12.5);
  EXPECT_NEAR(y[0], 3 / rms, 1e-6);
  EXPECT_NEAR(y[1], 4 / rms, 1e-6);
}

TEST(DropoutTest, TrainingDropsAndScalesEvalIsIdentity) {
  Generator gen(4);
  Dropout d(0.25, &gen);
  const Tensor x = Tensor::ones({4000});
  const auto y = d(x).to_vector<double>();
  int64_t kept = 0;
  for (double v : y) {
    ASSERT_TRUE(v == 0.0 || std::abs(v - 1.0 / 0.75) < 1e-6) << v;
    kept += v != 0.0;
  }
  EXPECT_NEAR(static_cast<double>(kept) / 4000, 0.75, 0.03);
  d.eval();
  EXPECT_EQ(d(x).to_vector<double>(), x.to_vector<double>());
  EXPECT_THROW(Dropout(1.0), Error);
}

TEST(MLPTest, LayersAreNumberedLikeTorchSequential) {
  MLP plain(3, {8, 5}, 2);
  EXPECT_EQ(parameter_names(plain),
            (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"}));
  MLP full(3, {8}, 2, "gelu", 0.1, /*layer_norm=*/true);
  EXPECT_EQ(full.size(), 5u);  // Linear, LayerNorm, GELU, Dropout, Linear
  EXPECT_EQ(parameter_names(full),
            (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"}));
  EXPECT_EQ(full(Tensor::ones({6, 3})).shape(), (Shape{6, 2}));
  EXPECT_THROW(MLP(3, {}, 2, "nope"), Error);
}

TEST(MLPTest, ForwardEqualsTheLayersAppliedByHand) {
  Generator gen(8);
  MLP m(4, {6}, 3, "silu", 0.0, true, &gen);
  const Tensor x = randn({5, 4}, 0, 1, DType::f32, Device::cpu(), &gen);
  const auto& l0 = static_cast<Linear&>(*m[0]);
  const auto& ln = static_cast<LayerNorm&>(*m[1]);
  const auto& l3 = static_cast<Linear&>(*m[3]);
  const Tensor expected =
      linear(silu(layer_norm(linear(x, l0.weight(), l0.bias()), ln.weight(), ln.bias(), 1e-5)), l3.weight(), l3.bias());
  EXPECT_EQ(m(x).to_vector<float>(), expected.to_vector<float>());
}

}  // namespace
}  // namespace tessera::nn
