#include "tests/common/op_table.h"

#include <cmath>
#include <sstream>

#include "framework/ops/ops.h"

namespace tessera::testing {

Tensor InputMaker::uniform(const Shape& shape, double low, double high) const {
  return rand(shape, low, high, dtype, device, gen);
}
Tensor InputMaker::normal(const Shape& shape, double std) const { return randn(shape, 0.0, std, dtype, device, gen); }
Tensor InputMaker::indices(const Shape& shape, int64_t high) const {
  return randint(shape, 0, high, DType::i64, device, gen);
}

std::vector<OpTestCase>& op_test_table() {
  static std::vector<OpTestCase> table;
  return table;
}

OpTestRegistrar operator+(OpTestName name, OpTestCase c) {
  c.name = name.name;
  op_test_table().push_back(std::move(c));
  return {};
}

double relative_error(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  if (va.size() != vb.size()) return INFINITY;
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < va.size(); ++i) {
    if (std::isnan(va[i]) != std::isnan(vb[i])) return INFINITY;
    if (std::isnan(va[i])) continue;
    diff = std::max(diff, std::fabs(va[i] - vb[i]));
    scale = std::max(scale, std::fabs(vb[i]));
  }
  return diff / (scale + 1e-12);
}

namespace {

struct Problem {
  std::vector<Tensor> inputs;
  std::vector<size_t> differentiable;  // indices of floating inputs
};

Problem make_problem(const OpTestCase& c, uint64_t seed) {
  Generator gen(seed);
  InputMaker maker{DType::f64, Device::cpu(), &gen};
  Problem p;
  p.inputs = c.inputs(maker);
  for (size_t i = 0; i < p.inputs.size(); ++i)
    if (p.inputs[i].defined() && is_floating_point(p.inputs[i].dtype())) p.differentiable.push_back(i);
  return p;
}

// sum(f(inputs) * v)
double objective(const OpTestCase& c, const std::vector<Tensor>& inputs, const Tensor& v) {
  NoGradGuard no_grad;
  return sum(mul(c.forward(inputs), v)).item();
}

std::string compare(const std::string& what, size_t input, const std::vector<double>& analytic,
                    const std::vector<double>& numeric) {
  double worst = 0.0;
  size_t at = 0;
  for (size_t i = 0; i < analytic.size(); ++i) {
    const double err = std::fabs(analytic[i] - numeric[i]) / (1e-6 + 1e-3 * std::fabs(numeric[i]));
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  if (worst <= 1.0) return "";
  std::ostringstream out;
  out << what << " of input " << input << " differs at element " << at << ": analytic " << analytic[at]
      << ", numeric " << numeric[at];
  return out.str();
}

std::vector<double> numeric_gradient(const std::function<double(const std::vector<Tensor>&)>& f,
                                     std::vector<Tensor> inputs, size_t which) {
  const double eps = 1e-6;
  Tensor x = inputs[which].clone_data();
  inputs[which] = x;
  double* data = x.data<double>();
  std::vector<double> grad(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double saved = data[i];
    data[i] = saved + eps;
    const double plus = f(inputs);
    data[i] = saved - eps;
    const double minus = f(inputs);
    data[i] = saved;
    grad[i] = (plus - minus) / (2 * eps);
  }
  return grad;
}

}  // namespace

std::string gradcheck(const OpTestCase& c, uint64_t seed) {
  Problem p = make_problem(c, seed);
  for (size_t i : p.differentiable) p.inputs[i].set_requires_grad(true);
  const Tensor out = c.forward(p.inputs);
  Generator vgen(seed + 1);
  const Tensor v = randn(out.shape(), 0.0, 1.0, DType::f64, Device::cpu(), &vgen);
  std::vector<Tensor> wrt;
  for (size_t i : p.differentiable) wrt.push_back(p.inputs[i]);
  if (wrt.empty()) return "";
  const auto analytic = autograd::grad({sum(mul(out, v))}, wrt, {}, std::nullopt, false, /*allow_unused=*/true);
  auto f = [&](const std::vector<Tensor>& x) { return objective(c, x, v); };
  for (size_t k = 0; k < wrt.size(); ++k) {
    std::vector<Tensor> detached;
    for (const Tensor& t : p.inputs) detached.push_back(t.detach());
    const auto numeric = numeric_gradient(f, detached, p.differentiable[k]);
    std::vector<double> a = analytic[k].defined() ? analytic[k].to_vector<double>()
                                                  : std::vector<double>(numeric.size(), 0.0);
    if (a.size() != numeric.size()) return "gradient has the wrong number of elements";
    std::string err = compare("gradient", p.differentiable[k], a, numeric);
    if (!err.empty()) return err;
  }
  return "";
}

std::string gradgradcheck(const OpTestCase& c, uint64_t seed) {
  Problem p = make_problem(c, seed);
  Generator vgen(seed + 1);
  Tensor v, w_all;
  // first derivatives as a function of the inputs: sum_k sum(grad_k(sum(f * v)) * w_k)
  std::vector<Tensor> ws;
  auto second_objective = [&](const std::vector<Tensor>& inputs, bool create_graph) -> Tensor {
    std::vector<Tensor> x;
    for (size_t i = 0; i < inputs.size(); ++i) {
      Tensor t = inputs[i].detach();
      if (std::find(p.differentiable.begin(), p.differentiable.end(), i) != p.differentiable.end())
        t.set_requires_grad(true);
      x.push_back(t);
    }
    const Tensor out = c.forward(x);
    if (!v.defined()) v = randn(out.shape(), 0.0, 1.0, DType::f64, Device::cpu(), &vgen);
    std::vector<Tensor> wrt;
    for (size_t i : p.differentiable) wrt.push_back(x[i]);
    const auto g = autograd::grad({sum(mul(out, v))}, wrt, {}, std::nullopt, /*create_graph=*/true, true);
    if (ws.empty())
      for (const Tensor& t : wrt) ws.push_back(randn(t.shape(), 0.0, 1.0, DType::f64, Device::cpu(), &vgen));
    Tensor total = Tensor::zeros({}, DType::f64);
    for (size_t k = 0; k < g.size(); ++k)
      if (g[k].defined() && g[k].requires_grad()) total = add(total, sum(mul(g[k], ws[k])));
    if (create_graph) {
      return total;
    }
    return total.detach();
  };
  // analytic: differentiate the second objective once more
  std::vector<Tensor> x;
  for (size_t i = 0; i < p.inputs.size(); ++i) {
    Tensor t = p.inputs[i].detach();
    x.push_back(t);
  }
  for (size_t i : p.differentiable) x[i].set_requires_grad(true);
  const Tensor out = c.forward(x);
  v = randn(out.shape(), 0.0, 1.0, DType::f64, Device::cpu(), &vgen);
  std::vector<Tensor> wrt;
  for (size_t i : p.differentiable) wrt.push_back(x[i]);
  const auto g = autograd::grad({sum(mul(out, v))}, wrt, {}, std::nullopt, true, true);
  for (const Tensor& t : wrt) ws.push_back(randn(t.shape(), 0.0, 1.0, DType::f64, Device::cpu(), &vgen));
  Tensor total = Tensor::zeros({}, DType::f64);
  bool any = false;
  for (size_t k = 0; k < g.size(); ++k)
    if (g[k].defined() && g[k].requires_grad()) {
      total = add(total, sum(mul(g[k], ws[k])));
      any = true;
    }
  if (!any) return "";  // linear in every input: second derivatives are all zero
  const auto analytic = autograd::grad({total}, wrt, {}, std::nullopt, false, true);
  auto f = [&](const std::vector<Tensor>& inputs) {
    NoGradGuard guard;  // numeric side: first derivatives only, computed with grad mode on inside
    autograd::GradMode::set_enabled(true);
    const double value = second_objective(inputs, false).item();
    return value;
  };
  for (size_t k = 0; k < wrt.size(); ++k) {
    std::vector<Tensor> detached;
    for (const Tensor& t : p.inputs) detached.push_back(t.detach());
    const auto numeric = numeric_gradient(f, detached, p.differentiable[k]);
    std::vector<double> a = analytic[k].defined() ? analytic[k].to_vector<double>()
                                                  : std::vector<double>(numeric.size(), 0.0);
    std::string err = compare("second derivative", p.differentiable[k], a, numeric);
    if (!err.empty()) return err;
  }
  return "";
}

std::string create_graph_matches_plain_backward(const OpTestCase& c, uint64_t seed) {
  std::vector<Tensor> results[2];
  for (int create_graph = 0; create_graph < 2; ++create_graph) {
    Problem p = make_problem(c, seed);
    std::vector<Tensor> wrt;
    for (size_t i : p.differentiable) {
      p.inputs[i].set_requires_grad(true);
      wrt.push_back(p.inputs[i]);
    }
    if (wrt.empty()) return "";
    const Tensor out = c.forward(p.inputs);
    Generator vgen(seed + 1);
    const Tensor v = randn(out.shape(), 0.0, 1.0, DType::f64, Device::cpu(), &vgen);
    results[create_graph] = autograd::grad({sum(mul(out, v))}, wrt, {}, std::nullopt, create_graph == 1, true);
  }
  for (size_t k = 0; k < results[0].size(); ++k) {
    if (results[0][k].defined() != results[1][k].defined()) return "a gradient is defined on one path only";
    if (!results[0][k].defined()) continue;
    const double err = relative_error(results[1][k], results[0][k]);
    if (!(err <= 1e-10)) {
      std::ostringstream out;
      out << "gradient of input " << k << " differs between create_graph and plain backward (relative " << err << ")";
      return out.str();
    }
  }
  return "";
}

}  // namespace tessera::testing
