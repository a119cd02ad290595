// Optimizers against reference trajectories computed here in double precision from the
// torch.optim documentation formulas; skipped parameters; state-dict resume; argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "framework/optim/adam.h"
#include "framework/optim/rmsprop.h"
#include "framework/optim/sgd.h"

namespace tessera::optim {
namespace {

// The reference state of one parameter: values, up to three state buffers, its step count.
struct RefParam {
  std::vector<double> p, s0, s1, s2;
  int64_t step = 0;
};

// A gradient that depends on the parameter (so trajectories differ between algorithms).
std::vector<double> gradient(const std::vector<double>& p, int step, int param) {
  std::vector<double> g(p.size());
  for (size_t i = 0; i < p.size(); ++i) g[i] = std::sin(0.7 * i + 1.3 * step + param) + 0.3 * p[i];
  return g;
}

using RefUpdate = std::function<void(RefParam&, std::vector<double>)>;

void sgd_reference(RefParam& r, std::vector<double> g, const SgdOptions& o) {
  for (size_t i = 0; i < r.p.size(); ++i) {
    double d = g[i] + o.weight_decay * r.p[i];
    if (o.momentum != 0) {
      r.s0[i] = r.step == 1 ? d : o.momentum * r.s0[i] + (1 - o.dampening) * d;
      d = o.nesterov ? d + o.momentum * r.s0[i] : r.s0[i];
    }
    r.p[i] -= o.lr * d;
  }
}

void adam_reference(RefParam& r, std::vector<double> g, const AdamOptions& o, bool decoupled) {
  const double bc1 = 1 - std::pow(o.beta1, r.step), bc2 = 1 - std::pow(o.beta2, r.step);
  for (size_t i = 0; i < r.p.size(); ++i) {
    if (decoupled) {
      r.p[i] *= 1 - o.lr * o.weight_decay;
    } else {
      g[i] += o.weight_decay * r.p[i];
    }
    r.s0[i] = o.beta1 * r.s0[i] + (1 - o.beta1) * g[i];
    r.s1[i] = o.beta2 * r.s1[i] + (1 - o.beta2) * g[i] * g[i];
    const double m_hat = r.s0[i] / bc1, v_hat = r.s1[i] / bc2;
    r.p[i] -= o.lr * m_hat / (std::sqrt(v_hat) + o.eps);
  }
}

void rmsprop_reference(RefParam& r, std::vector<double> g, const RmspropOptions& o) {
  for (size_t i = 0; i < r.p.size(); ++i) {
    g[i] += o.weight_decay * r.p[i];
    r.s0[i] = o.alpha * r.s0[i] + (1 - o.alpha) * g[i] * g[i];
    double avg;
    if (o.centered) {
      r.s2[i] = o.alpha * r.s2[i] + (1 - o.alpha) * g[i];
      avg = std::sqrt(r.s0[i] - r.s2[i] * r.s2[i]) + o.eps;
    } else {
      avg = std::sqrt(r.s0[i]) + o.eps;
    }
    if (o.momentum > 0) {
      r.s1[i] = o.momentum * r.s1[i] + g[i] / avg;
      r.p[i] -= o.lr * r.s1[i];
    } else {
      r.p[i] -= o.lr * g[i] / avg;
    }
  }
}

// Runs `steps` steps of the optimizer and of the reference on two parameters; parameter 1 has
// no gradient on step `skip_step`. Returns the largest relative difference seen.
double max_trajectory_error(DType dtype, const std::function<std::unique_ptr<Optimizer>(std::vector<Tensor>)>& make,
                            const RefUpdate& reference, int steps = 6, int skip_step = 3) {
  const std::vector<Shape> shapes = {{3, 7}, {5}};
  std::vector<Tensor> params;
  std::vector<RefParam> refs;
  for (size_t k = 0; k < shapes.size(); ++k) {
    std::vector<double> init(static_cast<size_t>(shape_numel(shapes[k])));
    for (size_t i = 0; i < init.size(); ++i) init[i] = std::cos(1.1 * i + k) * 0.8;
    params.push_back(Tensor::from_vector(init, shapes[k], dtype));
    params.back().set_requires_grad(true);
    refs.push_back({params.back().to_vector<double>(), std::vector<double>(init.size(), 0.0),
                    std::vector<double>(init.size(), 0.0), std::vector<double>(init.size(), 0.0), 0});
  }
  auto opt = make(params);
  double worst = 0.0;
  for (int step = 1; step <= steps; ++step) {
    for (size_t k = 0; k < params.size(); ++k) {
      if (k == 1 && step == skip_step) {
        params[k].zero_grad();
        continue;
      }
      const auto current = params[k].to_vector<double>();
      params[k].set_grad(Tensor::from_vector(gradient(current, step, static_cast<int>(k)), params[k].shape(), dtype));
      ++refs[k].step;
      reference(refs[k], gradient(current, step, static_cast<int>(k)));
    }
    opt->step();
    for (size_t k = 0; k < params.size(); ++k) {
      const auto got = params[k].to_vector<double>();
      for (size_t i = 0; i < got.size(); ++i)
        worst = std::max(worst, std::abs(got[i] - refs[k].p[i]) / (std::abs(refs[k].p[i]) + 1e-3));
    }
  }
  EXPECT_EQ(opt->steps(), steps);
  return worst;
}

struct Case {
  std::string name;
  std::function<std::unique_ptr<Optimizer>(std::vector<Tensor>)> make;
  RefUpdate reference;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  for (SgdOptions o : {SgdOptions{.lr = 0.1},
                       SgdOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.2, .weight_decay = 0.05},
                       SgdOptions{.lr = 0.05, .momentum = 0.8, .weight_decay = 0.01, .nesterov = true}}) {
    out.push_back({"SGD momentum=" + std::to_string(o.momentum) + (o.nesterov ? " nesterov" : ""),
                   [o](std::vector<Tensor> p) { return std::make_unique<SGD>(std::move(p), o); },
                   [o](RefParam& r, std::vector<double> g) { sgd_reference(r, std::move(g), o); }});
  }
  for (AdamOptions o : {AdamOptions{.lr = 0.01}, AdamOptions{.lr = 0.02, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6,
                                                             .weight_decay = 0.1}}) {
    out.push_back({"Adam wd=" + std::to_string(o.weight_decay),
                   [o](std::vector<Tensor> p) { return std::make_unique<Adam>(std::move(p), o); },
                   [o](RefParam& r, std::vector<double> g) { adam_reference(r, std::move(g), o, false); }});
  }
  const AdamWOptions w{.lr = 0.02, .beta1 = 0.85, .beta2 = 0.99, .eps = 1e-7, .weight_decay = 0.2};
  const AdamOptions wa{w.lr, w.beta1, w.beta2, w.eps, w.weight_decay};
  out.push_back({"AdamW", [w](std::vector<Tensor> p) { return std::make_unique<AdamW>(std::move(p), w); },
                 [wa](RefParam& r, std::vector<double> g) { adam_reference(r, std::move(g), wa, true); }});
  for (RmspropOptions o : {RmspropOptions{.lr = 0.01},
                           RmspropOptions{.lr = 0.01, .alpha = 0.9, .eps = 1e-6, .weight_decay = 0.1, .momentum = 0.5},
                           RmspropOptions{.lr = 0.005, .alpha = 0.95, .momentum = 0.3, .centered = true}}) {
    out.push_back({"RMSprop momentum=" + std::to_string(o.momentum) + (o.centered ? " centered" : ""),
                   [o](std::vector<Tensor> p) { return std::make_unique<RMSprop>(std::move(p), o); },
                   [o](RefParam& r, std::vector<double> g) { rmsprop_reference(r, std::move(g), o); }});
  }
  return out;
}

TEST(OptimizerTest, F64TrajectoriesMatchDoubleReference) {
  for (const Case& c : cases()) EXPECT_LT(max_trajectory_error(DType::f64, c.make, c.reference), 1e-12) << c.name;
}

TEST(OptimizerTest, F32TrajectoriesMatchDoubleReference) {
  for (const Case& c : cases()) EXPECT_LT(max_trajectory_error(DType::f32, c.make, c.reference), 2e-5) << c.name;
}

TEST(OptimizerTest, Bf16StepIsTheF32StepRoundedOnce) {
  // bf16 parameters keep f32 state and compute in f32: from equal values, a step on bf16
  // parameters gives exactly the f32 step's result rounded to bf16.
  for (const Case& c : cases()) {
    Tensor half = Tensor::from_vector(gradient(std::vector<double>(12, 0.5), 0, 0), {3, 4}, DType::bf16);
    Tensor full = half.to(DType::f32).detach();
    half.set_requires_grad(true);
    full.set_requires_grad(true);
    auto opt_half = c.make({half});
    auto opt_full = c.make({full});
    for (int step = 1; step <= 4; ++step) {
      copy_into(full, half);
      const Tensor g = Tensor::from_vector(gradient(half.to_vector<double>(), step, 0), {3, 4}, DType::bf16);
      half.set_grad(g);
      full.set_grad(g.to(DType::f32).detach());
      opt_half->step();
      opt_full->step();
      EXPECT_EQ(half.to_vector<float>(), full.to(DType::bf16).to_vector<float>()) << c.name << " step " << step;
    }
  }
}

TEST(OptimizerTest, ParameterWithoutGradientIsUntouchedAndKeepsItsStep) {
  Tensor a = Tensor::ones({4}), b = Tensor::ones({4});
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  Adam opt({a, b}, AdamOptions{.lr = 0.1, .weight_decay = 0.5});
  a.set_grad(Tensor::ones({4}));
  opt.step();
  EXPECT_EQ(b.to_vector<float>(), std::vector<float>(4, 1.0f));
  EXPECT_NE(a.to_vector<float>(), std::vector<float>(4, 1.0f));
  std::vector<std::string> keys;
  for (const auto& [k, _] : opt.state_dict()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"step", "lr", "state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq"}));
}

TEST(OptimizerTest, StateDictResumeGivesTheSameTrajectory) {
  auto run = [](bool resume_halfway) {
    Tensor p = Tensor::from_vector(std::vector<double>{0.5, -1.0, 2.0}, {3}, DType::f32);
    p.set_requires_grad(true);
    auto opt = std::make_unique<AdamW>(std::vector<Tensor>{p}, AdamWOptions{.lr = 0.05});
    for (int step = 1; step <= 6; ++step) {
      if (resume_halfway && step == 4) {
        const nn::StateDict saved = opt->state_dict();
        nn::StateDict copied;  // a checkpoint holds copies, not the live tensors
        for (const auto& [k, t] : saved) copied.emplace_back(k, t.clone_data());
        opt = std::make_unique<AdamW>(std::vector<Tensor>{p}, AdamWOptions{.lr = 0.05});
        opt->load_state_dict(copied);
        EXPECT_EQ(opt->steps(), 3);
      }
      p.set_grad(Tensor::from_vector(gradient(p.to_vector<double>(), step, 0), {3}, DType::f32));
      opt->step();
    }
    return p.to_vector<float>();
  };
  EXPECT_EQ(run(false), run(true));
}

TEST(OptimizerTest, LoadRejectsForeignStateAndBadShapes) {
  Tensor p = Tensor::zeros({2});
  p.set_requires_grad(true);
  SGD plain({p});
  EXPECT_THROW(plain.load_state_dict({{"step", Tensor::zeros({}, DType::i64)},
                                      {"state.0.momentum_buffer", Tensor::zeros({2})}}),
               Error);
  SGD momentum({p}, SgdOptions{.momentum = 0.9});
  EXPECT_THROW(momentum.load_state_dict({{"step", Tensor::zeros({}, DType::i64)},
                                         {"state.0.momentum_buffer", Tensor::zeros({3})}}),
               Error);
  EXPECT_THROW(momentum.load_state_dict({{"step", Tensor::zeros({}, DType::i64)},
                                         {"state.1.momentum_buffer", Tensor::zeros({2})}}),
               Error);
  EXPECT_THROW(momentum.load_state_dict({{"state.0.momentum_buffer", Tensor::zeros({2})}}), Error);
  EXPECT_THROW(momentum.load_state_dict({{"step", Tensor::zeros({}, DType::i64)}, {"bogus", Tensor::zeros({})}}),
               Error);
  momentum.load_state_dict({{"step", Tensor::full({}, 5, DType::i64)}, {"lr", Tensor::full({}, 0.25, DType::f64)}});
  EXPECT_EQ(momentum.steps(), 5);
  EXPECT_EQ(momentum.lr(), 0.25);
}

TEST(OptimizerTest, ConstructorRejectsBadArguments) {
  Tensor p = Tensor::zeros({2});
  p.set_requires_grad(true);
  EXPECT_THROW(SGD({p, p}), Error);
  EXPECT_THROW(SGD({Tensor::zeros({2}, DType::i64)}), Error);
  EXPECT_THROW(SGD({p}, SgdOptions{.lr = -1}), Error);
  EXPECT_THROW(SGD({p}, SgdOptions{.nesterov = true}), Error);
  EXPECT_THROW(Adam({p}, AdamOptions{.beta1 = 1.0}), Error);
  EXPECT_THROW(RMSprop({p}, RmspropOptions{.momentum = -0.1}), Error);
}

TEST(OptimizerTest, ZeroGradAndMixedDtypesInOneOptimizer) {
  Tensor a = Tensor::ones({3}, DType::f64), b = Tensor::ones({3}, DType::f32);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  SGD opt({a, b}, SgdOptions{.lr = 0.5});
  a.set_grad(Tensor::ones({3}, DType::f64));
  b.set_grad(Tensor::full({3}, 2.0));
  opt.step();
  EXPECT_EQ(a.to_vector<double>(), std::vector<double>(3, 0.5));
  EXPECT_EQ(b.to_vector<double>(), std::vector<double>(3, 0.0));
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  EXPECT_FALSE(b.grad().defined());
}

}  // namespace
}  // namespace tessera::optim
