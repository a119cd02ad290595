// Layers without dependencies on other op families: Linear, Activation, Sequential, and the
// initialisers they use.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/nn/activation.h"
#include "framework/nn/init.h"
#include "framework/nn/linear.h"
#include "framework/nn/sequential.h"
#include "framework/ops/ops.h"

namespace tessera::nn {
namespace {

TEST(LinearTest, ShapesAndTorchDefaultInitBounds) {
  Generator gen(3);
  Linear l(64, 10, true, &gen);
  EXPECT_EQ(l.weight().shape(), (Shape{10, 64}));
  EXPECT_EQ(l.bias().shape(), (Shape{10}));
  const double bound = 1.0 / 8.0;
  double max_w = 0, max_b = 0;
  for (double v : l.weight().to_vector<double>()) max_w = std::max(max_w, std::abs(v));
  for (double v : l.bias().to_vector<double>()) max_b = std::max(max_b, std::abs(v));
  EXPECT_LE(max_w, bound);
  EXPECT_GT(max_w, 0.9 * bound);  // 640 draws fill the range
  EXPECT_LE(max_b, bound);
  EXPECT_GT(max_b, 0.5 * bound);
}

TEST(LinearTest, SameGeneratorSeedGivesSameWeights) {
  Generator a(11), b(11);
  Linear la(5, 4, true, &a), lb(5, 4, true, &b);
  EXPECT_EQ(la.weight().to_vector<float>(), lb.weight().to_vector<float>());
  EXPECT_EQ(la.bias().to_vector<float>(), lb.bias().to_vector<float>());
}

TEST(LinearTest, ForwardIsXWeightTransposedPlusBias) {
  Linear l(2, 3);
  l.load_state_dict({{"weight", Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {3, 2})},
                     {"bias", Tensor::from_vector(std::vector<double>{0.5, -1, 2}, {3})}});
  const Tensor y = l(Tensor::from_vector(std::vector<double>{1, -1, 2, 0.5}, {2, 2}));
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{-0.5, -2, 1, 3.5, 7, 15}));
  Linear no_bias(2, 3, false);
  EXPECT_EQ(no_bias.named_parameters().size(), 1u);
  EXPECT_FALSE(no_bias.bias().defined());
  EXPECT_THROW(l(Tensor::ones({2, 3})), Error);
}

TEST(InitTest, KaimingUniformMatchesTorchBound) {
  Tensor w = Tensor::empty({8, 50});
  init::kaiming_uniform_(w, 0.0);
  const double bound = std::sqrt(2.0) * std::sqrt(3.0 / 50.0);
  for (double v : w.to_vector<double>()) EXPECT_LE(std::abs(v), bound);
  EXPECT_EQ(init::fan_in(Tensor::empty({4, 3, 5, 5})), 75);
  EXPECT_THROW(init::fan_in(Tensor::empty({4})), Error);
}

TEST(InitTest, InitialisersWriteInPlace) {
  Tensor t = Tensor::zeros({3, 2}, DType::f64);
  const void* data = t.data_ptr();
  init::ones_(t);
  EXPECT_EQ(t.data_ptr(), data);
  EXPECT_EQ(t.to_vector<double>(), std::vector<double>(6, 1.0));
  init::constant_(t, 2.5);
  EXPECT_EQ(t.to_vector<double>(), std::vector<double>(6, 2.5));
  init::normal_(t, 0.0, 1.0);
  EXPECT_EQ(t.data_ptr(), data);
  EXPECT_THROW(init::zeros_(Tensor::zeros({2}, DType::i64)), Error);
}

TEST(ActivationTest, EachNameComputesItsFunction) {
  const Tensor x = Tensor::from_vector(std::vector<double>{-2.0, -0.5, 0.0, 1.5}, {4}, DType::f64);
  auto apply = [&](const std::string& name, double param = 0.0) { return Activation(name, param)(x).to_vector<double>(); };
  EXPECT_EQ(apply("relu"), (std::vector<double>{0, 0, 0, 1.5}));
  EXPECT_EQ(apply("leaky_relu"), (std::vector<double>{-0.02, -0.005, 0, 1.5}));
  EXPECT_EQ(apply("leaky_relu", 0.2), (std::vector<double>{-0.4, -0.1, 0, 1.5}));
  const std::vector<double> xs = {-2.0, -0.5, 0.0, 1.5};
  for (size_t i = 0; i < xs.size(); ++i) {
    const double v = xs[i];
    EXPECT_NEAR(apply("tanh")[i], std::tanh(v), 1e-12);
    EXPECT_NEAR(apply("sigmoid")[i], 1 / (1 + std::exp(-v)), 1e-12);
    EXPECT_NEAR(apply("silu")[i], v / (1 + std::exp(-v)), 1e-12);
    EXPECT_NEAR(apply("gelu")[i], 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))), 1e-12);
  }
}

TEST(ActivationTest, UnknownNameListsValidOnes) {
  try {
    Activation("swish");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("\"swish\""), std::string::npos) << msg;
    EXPECT_NE(msg.find("relu, gelu, silu, tanh, sigmoid, leaky_relu"), std::string::npos) << msg;
  }
}

TEST(SequentialTest, ChainsModulesAndNamesThemByIndex) {
  Sequential seq;
  auto first = std::static_pointer_cast<Linear>(seq.add(std::make_shared<Linear>(3, 4)));
  seq.add(std::make_shared<Activation>("relu"));
  auto last = std::static_pointer_cast<Linear>(seq.add(std::make_shared<Linear>(4, 2)));
  std::vector<std::string> names;
  for (const auto& [k, _] : seq.named_parameters()) names.push_back(k);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  const Tensor x = rand({5, 3});
  const Tensor expected = (*last)(relu((*first)(x)));
  EXPECT_EQ(seq(x).to_vector<float>(), expected.to_vector<float>());
  EXPECT_EQ(seq.size(), 3u);
  EXPECT_THROW(seq[3], Error);
}

}  // namespace
}  // namespace tessera::nn
