// MlpClassifier: shapes, PyTorch-style parameter names, input checks, and that it can learn.
#include <gtest/gtest.h>

#include "framework/core/error.h"
#include "framework/models/classifier.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"

namespace tessera::models {
namespace {

TEST(MlpClassifierTest, ImagesToLogits) {
  MlpClassifier model({});
  const Tensor logits = model(Tensor::zeros({5, 1, 28, 28}));
  EXPECT_EQ(logits.shape(), (Shape{5, 10}));
}

TEST(MlpClassifierTest, ParameterNamesMatchPyTorchSequential) {
  ClassifierOptions o;
  o.in_features = 12;
  o.hidden = {8, 6};
  o.classes = 3;
  MlpClassifier model(o);
  std::vector<std::string> names;
  for (const auto& [name, t] : model.named_parameters()) names.push_back(name + shape_str(t.shape()));
  EXPECT_EQ(names, (std::vector<std::string>{"mlp.0.weight[8, 12]", "mlp.0.bias[8]", "mlp.2.weight[6, 8]",
                                             "mlp.2.bias[6]", "mlp.4.weight[3, 6]", "mlp.4.bias[3]"}));
}

TEST(MlpClassifierTest, WrongInputSizeNamesShapes) {
  MlpClassifier model({});
  try {
    model(Tensor::zeros({2, 3, 28, 28}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("784 values per example, got shape [2, 3, 28, 28]"), std::string::npos)
        << e.what();
  }
}

TEST(MlpClassifierTest, SameSeedSameWeights) {
  Generator a(7), b(7);
  MlpClassifier m1({}, &a), m2({}, &b);
  const auto p1 = m1.parameters(), p2 = m2.parameters();
  ASSERT_EQ(p1.size(), p2.size());
  for (size_t i = 0; i < p1.size(); ++i) EXPECT_EQ(p1[i].to_vector<float>(), p2[i].to_vector<float>());
}

TEST(MlpClassifierTest, FitsASmallLabelledBatch) {
  Generator gen(3);
  ClassifierOptions o;
  o.in_features = 16;
  o.hidden = {32};
  o.classes = 4;
  MlpClassifier model(o, &gen);
  const Tensor x = randn({32, 16}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);
  const Tensor y = randint({32}, 0, 4, DType::i64, Device::cpu(), &gen);
  optim::AdamOptions ao;
  ao.lr = 1e-2;
  optim::Adam opt(model.parameters(), ao);
  double first = 0, last = 0;
  for (int step = 0; step < 200; ++step) {
    opt.zero_grad();
    const Tensor loss = cross_entropy(model(x), y);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item();
  }
  EXPECT_LT(last, 0.05 * first) << "first " << first << " last " << last;
  const Tensor correct = sum(eq(argmax(model(x), -1), y));
  EXPECT_EQ(correct.item(), 32.0);
}

}  // namespace
}  // namespace tessera::models
