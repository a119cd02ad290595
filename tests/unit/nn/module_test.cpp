// nn::Module: naming and traversal order, state-dict round trips and strict-load errors,
// in-place conversion that keeps outside handles valid, train/eval propagation.
#include <gtest/gtest.h>

#include "framework/nn/linear.h"
#include "framework/nn/module.h"
#include "framework/nn/sequential.h"
#include "framework/ops/ops.h"

namespace tessera::nn {
namespace {

std::vector<std::string> keys_of(const std::vector<std::pair<std::string, Tensor>>& entries) {
  std::vector<std::string> keys;
  for (const auto& [k, _] : entries) keys.push_back(k);
  return keys;
}

// A block with a parameter, a buffer and two children, like a transformer block.
class Block : public Module {
 public:
  Block() {
    scale = register_parameter("scale", Tensor::ones({3}));
    register_buffer("count", Tensor::zeros({1}, DType::i64));
    first = register_module("first", std::make_shared<Linear>(3, 4));
    second = register_module("second", std::make_shared<Linear>(4, 2, /*bias=*/false));
  }
  Tensor scale;
  std::shared_ptr<Linear> first, second;
  int mode_changes = 0;

 protected:
  void on_train_mode(bool) override { ++mode_changes; }
};

class Model : public Module {
 public:
  Model() {
    embed = register_parameter("embed", Tensor::zeros({5, 3}));
    blocks = register_module("blocks", std::make_shared<Sequential>());
    auto b0 = std::make_shared<Block>();
    auto b1 = std::make_shared<Block>();
    blocks->add(std::make_shared<Wrapper>(b0));
    blocks->add(std::make_shared<Wrapper>(b1));
  }
  // Sequential holds UnaryModules; wrap a Block as one.
  struct Wrapper : UnaryModule {
    explicit Wrapper(std::shared_ptr<Block> b) { block = register_module("inner", b); }
    Tensor forward(const Tensor& x) override { return x; }
    std::shared_ptr<Block> block;
  };
  Tensor embed;
  std::shared_ptr<Sequential> blocks;
};

TEST(ModuleTest, NamesAreDottedPathsInRegistrationOrder) {
  Model m;
  const std::vector<std::string> expected = {
      "embed",
      "blocks.0.inner.scale", "blocks.0.inner.first.weight", "blocks.0.inner.first.bias",
      "blocks.0.inner.second.weight",
      "blocks.1.inner.scale", "blocks.1.inner.first.weight", "blocks.1.inner.first.bias",
      "blocks.1.inner.second.weight"};
  EXPECT_EQ(keys_of(m.named_parameters()), expected);
  EXPECT_EQ(keys_of(m.named_buffers()), (std::vector<std::string>{"blocks.0.inner.count", "blocks.1.inner.count"}));
  EXPECT_EQ(m.parameter_count(), 15 + 2 * (3 + 12 + 4 + 8));
  for (const Tensor& p : m.parameters()) EXPECT_TRUE(p.requires_grad());
  std::vector<std::string> modules;
  for (const auto& [name, _] : m.named_modules()) modules.push_back(name);
  EXPECT_EQ(modules.front(), "blocks");
  EXPECT_EQ(modules[2], "blocks.0.inner");
}

TEST(ModuleTest, StateDictIsParametersThenBuffersPerModule) {
  Block b;
  EXPECT_EQ(keys_of(b.state_dict()),
            (std::vector<std::string>{"scale", "count", "first.weight", "first.bias", "second.weight"}));
  // Entries share storage with the module.
  EXPECT_TRUE(b.state_dict()[0].second.same(b.scale));
}

TEST(ModuleTest, StateDictRoundTripCopiesValues) {
  Model a, b;
  for (auto& [_, t] : a.state_dict()) {
    if (is_floating_point(t.dtype())) copy_into(t, rand(t.shape(), -1, 1, t.dtype()));
  }
  b.load_state_dict(a.state_dict());
  const auto sa = a.state_dict(), sb = b.state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].first, sb[i].first);
    EXPECT_FALSE(sa[i].second.same(sb[i].second));
    EXPECT_EQ(sa[i].second.to_vector<double>(), sb[i].second.to_vector<double>()) << sa[i].first;
  }
}

TEST(ModuleTest, LoadConvertsDtypeAndKeepsParameterIdentity) {
  Linear l(2, 2);
  const Tensor w = l.weight();
  StateDict state = {{"weight", Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2}, DType::f64)},
                     {"bias", Tensor::from_vector(std::vector<double>{5, 6}, {2}, DType::f64)}};
  l.load_state_dict(state);
  EXPECT_TRUE(l.weight().same(w));
  EXPECT_EQ(w.dtype(), DType::f32);
  EXPECT_EQ(w.to_vector<double>(), (std::vector<double>{1, 2, 3, 4}));
}

TEST(ModuleTest, StrictLoadNamesMissingKey) {
  Linear l(2, 3);
  StateDict state = {{"weight", Tensor::zeros({3, 2})}};
  try {
    l.load_state_dict(state);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing keys \"bias\""), std::string::npos) << e.what();
  }
  l.load_state_dict(state, /*strict=*/false);  // non-strict: loads what is there
}

TEST(ModuleTest, StrictLoadNamesUnexpectedKey) {
  Linear l(2, 3);
  StateDict state = l.state_dict();
  state.emplace_back("extra.weight", Tensor::zeros({1}));
  try {
    l.load_state_dict(state);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unexpected keys \"extra.weight\""), std::string::npos) << e.what();
  }
  l.load_state_dict(state, /*strict=*/false);
}

TEST(ModuleTest, ShapeMismatchNamesKeyAndBothShapes) {
  Linear l(2, 3);
  StateDict state = {{"weight", Tensor::zeros({2, 3})}, {"bias", Tensor::zeros({3})}};
  for (bool strict : {true, false}) {
    try {
      l.load_state_dict(state, strict);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("\"weight\""), std::string::npos) << msg;
      EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
      EXPECT_NE(msg.find("[3, 2]"), std::string::npos) << msg;
    }
  }
}

TEST(ModuleTest, ToDtypeConvertsInPlaceAndHandlesStayValid) {
  Block b;
  const Tensor held = b.first->weight();  // e.g. an optimizer's handle
  const auto before = held.to_vector<double>();
  held.set_grad(Tensor::ones(held.shape()));
  b.to(DType::f64);
  EXPECT_EQ(held.dtype(), DType::f64);
  EXPECT_TRUE(held.same(b.first->weight()));
  EXPECT_TRUE(held.requires_grad());
  EXPECT_EQ(held.grad().dtype(), DType::f64);
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(held.to_vector<double>()[i], before[i]);
  EXPECT_EQ(b.named_buffers()[0].second.dtype(), DType::i64);  // integer buffers keep their type
  // The converted parameter still trains: gradients flow to the same handle.
  held.zero_grad();
  Tensor y = b.first->forward(Tensor::ones({1, 3}, DType::f64)).sum();
  y.backward();
  ASSERT_TRUE(held.grad().defined());
  EXPECT_EQ(held.grad().dtype(), DType::f64);
  b.to(DType::bf16);
  EXPECT_EQ(held.dtype(), DType::bf16);
  EXPECT_THROW(b.to(DType::i32), Error);
}

TEST(ModuleTest, TiedParameterIsListedOnceAndConvertedOnce) {
  struct Tied : Module {
    Tied() {
      a = register_module("a", std::make_shared<Linear>(2, 2, false));
      b = register_module("b", std::make_shared<Sub>(a->weight()));
    }
    struct Sub : Module {
      explicit Sub(Tensor w) { register_parameter("weight", w); }
    };
    std::shared_ptr<Linear> a;
    std::shared_ptr<Sub> b;
  } m;
  EXPECT_EQ(keys_of(m.named_parameters()), (std::vector<std::string>{"a.weight"}));
  EXPECT_EQ(keys_of(m.state_dict()), (std::vector<std::string>{"a.weight", "b.weight"}));
  m.to(DType::f64);
  EXPECT_TRUE(m.state_dict()[0].second.same(m.state_dict()[1].second));
  EXPECT_EQ(m.a->weight().dtype(), DType::f64);
}

TEST(ModuleTest, TrainAndEvalReachEveryDescendant) {
  Model m;
  auto inner = std::static_pointer_cast<Model::Wrapper>((*m.blocks)[1])->block;
  EXPECT_TRUE(inner->is_training());
  m.eval();
  EXPECT_FALSE(m.is_training());
  EXPECT_FALSE(inner->is_training());
  EXPECT_FALSE(inner->first->is_training());
  EXPECT_EQ(inner->mode_changes, 1);
  m.train();
  EXPECT_TRUE(inner->first->is_training());
}

TEST(ModuleTest, ZeroGradDropsGradients) {
  Linear l(3, 2);
  l.forward(Tensor::ones({4, 3})).sum().backward();
  ASSERT_TRUE(l.weight().grad().defined());
  l.zero_grad();
  EXPECT_FALSE(l.weight().grad().defined());
  EXPECT_FALSE(l.bias().grad().defined());
}

TEST(ModuleTest, RegistrationErrorsNameTheProblem) {
  struct Bad : Module {
    void dotted() { register_parameter("a.b", Tensor::zeros({1})); }
    void twice() {
      register_parameter("w", Tensor::zeros({1}));
      register_buffer("w", Tensor::zeros({1}));
    }
    void integer() { register_parameter("i", Tensor::zeros({1}, DType::i64)); }
  };
  Bad b;
  EXPECT_THROW(b.dotted(), Error);
  EXPECT_THROW(b.twice(), Error);
  EXPECT_THROW(b.integer(), Error);
}

}  // namespace
}  // namespace tessera::nn
