// Image layers: Conv2d, ConvTranspose2d, BatchNorm2d, GroupNorm, AvgPool2d, Upsample, Flatten —
// parameter shapes, PyTorch-default initialisation, state-dict names, train/eval behaviour,
// BatchNorm2d's replica sum.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/nn/layers.h"
#include "framework/ops/ops.h"

namespace tessera::nn {
namespace {

double max_abs(const Tensor& t) {
  double m = 0.0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

std::vector<std::string> keys(const StateDict& state) {
  std::vector<std::string> out;
  for (const auto& [name, _] : state) out.push_back(name);
  return out;
}

TEST(Conv2dLayerTest, ShapesAndTorchDefaultInitBounds) {
  Generator gen(1);
  Conv2d conv(8, 32, {.kernel = 4, .stride = 2, .padding = 1}, &gen);
  EXPECT_EQ(conv.weight().shape(), (Shape{32, 8, 4, 4}));
  EXPECT_EQ(conv.bias().shape(), (Shape{32}));
  const double bound = 1.0 / std::sqrt(8.0 * 16.0);  // kaiming_uniform(a=sqrt(5)) = 1/sqrt(fan_in)
  EXPECT_LE(max_abs(conv.weight()), bound);
  EXPECT_GT(max_abs(conv.weight()), 0.95 * bound);
  EXPECT_LE(max_abs(conv.bias()), bound);
  EXPECT_GT(max_abs(conv.bias()), 0.5 * bound);
  EXPECT_EQ(conv(Tensor::zeros({2, 8, 28, 28})).shape(), (Shape{2, 32, 14, 14}));
}

TEST(Conv2dLayerTest, GroupsShrinkTheWeightAndBiasCanBeOff) {
  Conv2d conv(6, 4, {.kernel = Size2(3, 1), .groups = 2, .bias = false});
  EXPECT_EQ(conv.weight().shape(), (Shape{4, 3, 3, 1}));
  EXPECT_FALSE(conv.bias().defined());
  EXPECT_EQ(keys(conv.state_dict()), (std::vector<std::string>{"weight"}));
}

TEST(Conv2dLayerTest, WrongInputChannelsNameTheLayer) {
  Conv2d conv(3, 4, {.kernel = 3});
  try {
    conv(Tensor::zeros({1, 2, 5, 5}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Conv2d(3 channels in)"), std::string::npos) << e.what();
  }
}

TEST(ConvTranspose2dLayerTest, WeightIsInByOutAndFanInUsesOutChannels) {
  Generator gen(2);
  ConvTranspose2d deconv(64, 16, {.kernel = 4, .stride = 2, .padding = 1}, &gen);
  EXPECT_EQ(deconv.weight().shape(), (Shape{64, 16, 4, 4}));
  const double bound = 1.0 / std::sqrt(16.0 * 16.0);  // torch's fan_in is weight.size(1) * kh * kw
  EXPECT_LE(max_abs(deconv.weight()), bound);
  EXPECT_GT(max_abs(deconv.weight()), 0.95 * bound);
  EXPECT_LE(max_abs(deconv.bias()), bound);
  EXPECT_EQ(deconv(Tensor::zeros({2, 64, 7, 7})).shape(), (Shape{2, 16, 14, 14}));
}

TEST(BatchNorm2dTest, StateDictUsesTorchNamesAndOrder) {
  BatchNorm2d bn(3);
  EXPECT_EQ(keys(bn.state_dict()),
            (std::vector<std::string>{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}));
  EXPECT_EQ(bn.num_batches_tracked().dtype(), DType::i64);
  EXPECT_EQ(bn.num_batches_tracked().dim(), 0);
  EXPECT_EQ(bn.parameters().size(), 2u);
}

TEST(BatchNorm2dTest, TrainingUpdatesBuffersAndEvalUsesThem) {
  BatchNorm2d bn(2, 1e-5, 0.5);
  Generator gen(3);
  const Tensor x = randn({8, 2, 3, 3}, 2.0, 3.0, DType::f32, Device::cpu(), &gen);
  bn(x);
  bn(x);
  EXPECT_EQ(bn.num_batches_tracked().to_vector<int64_t>()[0], 2);
  const double mean0 = mean(slice(x, 1, 0, 1)).item();
  EXPECT_NEAR(bn.running_mean().to_vector<double>()[0], 0.75 * mean0, 1e-4);  // 0 -> m/2 -> 3m/4
  bn.eval();
  const Tensor y = bn(x);
  EXPECT_EQ(bn.num_batches_tracked().to_vector<int64_t>()[0], 2);
  const double rm = bn.running_mean().to_vector<double>()[0], rv = bn.running_var().to_vector<double>()[0];
  EXPECT_NEAR(y.to_vector<double>()[0], (x.to_vector<double>()[0] - rm) / std::sqrt(rv + 1e-5), 1e-4);
}

TEST(BatchNorm2dTest, WithoutRunningStatsEvalStillUsesBatchStatistics) {
  BatchNorm2d bn(2, 1e-5, 0.1, /*affine=*/false, /*track_running_stats=*/false);
  EXPECT_TRUE(bn.state_dict().empty());
  bn.eval();
  Generator gen(4);
  const Tensor y = bn(randn({4, 2, 2, 2}, 5.0, 1.0, DType::f32, Device::cpu(), &gen));
  EXPECT_NEAR(mean(y).item(), 0.0, 1e-5);
}

TEST(BatchNorm2dTest, AReplicaSumSynchronisesTrainingStatisticsOnly) {
  BatchNorm2d synced(2, 1e-5, 0.5), plain(2, 1e-5, 0.5);
  int calls = 0;
  synced.set_replica_sum([&calls](const Tensor& t) {
    ++calls;
    return t;  // one replica
  });
  EXPECT_TRUE(synced.synchronized());
  EXPECT_FALSE(plain.synchronized());
  Generator gen(6);
  const Tensor x = randn({4, 2, 3, 3}, 1.0, 2.0, DType::f32, Device::cpu(), &gen);
  EXPECT_LE(max_abs(synced(x) - plain(x)), 1e-5);
  EXPECT_EQ(calls, 1);
  EXPECT_LE(max_abs(synced.running_var() - plain.running_var()), 1e-5);
  EXPECT_EQ(synced.num_batches_tracked().to_vector<int64_t>()[0], 1);
  synced.eval();
  plain.eval();
  EXPECT_LE(max_abs(synced(x) - plain(x)), 1e-5);
  EXPECT_EQ(calls, 1) << "eval mode uses the running statistics: nothing to synchronise";
}

TEST(GroupNormTest, ParametersAndShape) {
  GroupNorm gn(4, 8);
  EXPECT_EQ(keys(gn.state_dict()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(gn(Tensor::ones({2, 8, 3, 3})).shape(), (Shape{2, 8, 3, 3}));
  EXPECT_THROW(GroupNorm(3, 8), Error);
}

TEST(ImageLayersTest, DcganDiscriminatorStackRunsAndBackpropagates) {
  Generator gen(5);
  Sequential d;
  d.add(std::make_shared<Conv2d>(1, 4, Conv2dSettings{.kernel = 4, .stride = 2, .padding = 1}, &gen));
  d.add(std::make_shared<Activation>("leaky_relu", 0.2));
  d.add(std::make_shared<Conv2d>(4, 8, Conv2dSettings{.kernel = 4, .stride = 2, .padding = 1, .bias = false}, &gen));
  d.add(std::make_shared<BatchNorm2d>(8));
  d.add(std::make_shared<AvgPool2d>(Size2(7)));
  d.add(std::make_shared<Flatten>());
  d.add(std::make_shared<Linear>(8, 1, true, &gen));
  const Tensor out = d(randn({3, 1, 28, 28}, 0.0, 1.0, DType::f32, Device::cpu(), &gen));
  EXPECT_EQ(out.shape(), (Shape{3, 1}));
  sum(out).backward();
  for (const auto& [name, p] : d.named_parameters()) EXPECT_TRUE(p.grad().defined()) << name;
  EXPECT_EQ(keys(d.state_dict())[3], "3.weight");  // 0.weight, 0.bias, 2.weight, 3.weight
}

TEST(ImageLayersTest, UpsampleDoublesAndFlattenKeepsTheBatch) {
  EXPECT_EQ(Upsample(2)(Tensor::zeros({2, 3, 7, 7})).shape(), (Shape{2, 3, 14, 14}));
  EXPECT_EQ(Flatten()(Tensor::zeros({2, 3, 4, 5})).shape(), (Shape{2, 60}));
  EXPECT_THROW(Upsample(0), Error);
}

}  // namespace
}  // namespace tessera::nn
