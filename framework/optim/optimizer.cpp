// Optimizer base (optimizer.h): parameter checks, lazily created state, per-parameter step
// counts, grouping for the fused kernels, and the state dict.
#include "framework/optim/optimizer.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <unordered_set>

#include "framework/autograd/grad_mode.h"
#include "framework/core/error.h"

namespace tessera::optim {
namespace {

DType state_dtype(DType param_dtype) { return param_dtype == DType::f64 ? DType::f64 : DType::f32; }

Tensor host_i64(int64_t v) { return Tensor::full({}, static_cast<double>(v), DType::i64); }

// "state.<i>.<name>" -> (i, name); false if the key has another form.
bool parse_state_key(const std::string& key, size_t& index, std::string& name) {
  const std::string prefix = "state.";
  if (key.rfind(prefix, 0) != 0) return false;
  const size_t dot = key.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size() || dot + 1 == key.size()) return false;
  const std::string digits = key.substr(prefix.size(), dot - prefix.size());
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  index = std::strtoull(digits.c_str(), nullptr, 10);
  name = key.substr(dot + 1);
  return true;
}

}  // namespace

Optimizer::Optimizer(std::vector<Tensor> params, double lr) : params_(std::move(params)), lr_(lr) {
  TESSERA_CHECK(lr >= 0.0, "optimizer: learning rate ", lr, " is negative");
  std::unordered_set<const TensorImpl*> seen;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    TESSERA_CHECK(p.defined(), "optimizer: parameter ", i, " is undefined");
    TESSERA_CHECK(is_floating_point(p.dtype()), "optimizer: parameter ", i, " is ", dtype_name(p.dtype()),
                  "; only floating-point tensors can be optimized");
    TESSERA_CHECK(p.is_leaf(), "optimizer: parameter ", i, " has autograd history (not a leaf)");
    TESSERA_CHECK(seen.insert(p.impl()).second, "optimizer: parameter ", i,
                  " appears twice in the list (it would be updated twice)");
  }
  state_.resize(params_.size());
  param_steps_.assign(params_.size(), 0);
}

void Optimizer::zero_grad() {
  for (const Tensor& p : params_) p.zero_grad();
}

Tensor& Optimizer::state(size_t param_index, const std::string& name) {
  TESSERA_ASSERT(param_index < params_.size());
  for (auto& [n, t] : state_[param_index])
    if (n == name) return t;
  const Tensor& p = params_[param_index];
  state_[param_index].emplace_back(name, Tensor::zeros(p.shape(), state_dtype(p.dtype()), p.device()));
  return state_[param_index].back().second;
}

bool Optimizer::has_state(size_t param_index, const std::string& name) const {
  TESSERA_ASSERT(param_index < params_.size());
  for (const auto& [n, _] : state_[param_index])
    if (n == name) return true;
  return false;
}

std::vector<Optimizer::UpdateGroup> Optimizer::prepare_step(const std::vector<std::string>& slot_names) {
  TESSERA_ASSERT(slot_names.size() <= 3, "at most three state buffers per parameter");
  ++steps_;
  std::vector<UpdateGroup> groups;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    TESSERA_CHECK(p.is_contiguous(), "optimizer: parameter ", i, " of shape ", shape_str(p.shape()),
                  " is not contiguous");
    TESSERA_CHECK(g.device() == p.device(), "optimizer: the gradient of parameter ", i, " is on ", g.device().str(),
                  " but the parameter is on ", p.device().str());
    TESSERA_CHECK(g.shape() == p.shape(), "optimizer: the gradient of parameter ", i, " has shape ",
                  shape_str(g.shape()), " but the parameter has shape ", shape_str(p.shape()));
    auto group = std::find_if(groups.begin(), groups.end(),
                              [&](const UpdateGroup& u) { return u.dtype == p.dtype() && u.device == p.device(); });
    if (group == groups.end()) group = groups.insert(groups.end(), UpdateGroup{p.dtype(), p.device(), {}, {}, {}});
    if (g.dtype() != p.dtype() || !g.is_contiguous()) {
      Tensor converted = Tensor::empty(p.shape(), p.dtype(), p.device());
      copy_into(converted, g);
      g = converted;
      group->held.push_back(g);
    }
    kernels::OptimTensor t;
    t.param = p.data_ptr();
    t.grad = g.data_ptr();
    t.numel = p.numel();
    t.step = ++param_steps_[i];
    bool fresh = false;
    for (size_t k = 0; k < slot_names.size(); ++k) {
      if (slot_names[k].empty()) continue;
      fresh = fresh || !has_state(i, slot_names[k]);
      t.state[k] = state(i, slot_names[k]).data_ptr();
    }
    group->tensors.push_back(t);
    group->fresh_state.push_back(fresh);
  }
  return groups;
}

nn::StateDict Optimizer::state_dict() const {
  nn::StateDict out;
  out.emplace_back("step", host_i64(steps_));
  out.emplace_back("lr", Tensor::full({}, lr_, DType::f64));
  for (size_t i = 0; i < params_.size(); ++i) {
    if (param_steps_[i] == 0 && state_[i].empty()) continue;
    const std::string prefix = "state." + std::to_string(i) + ".";
    out.emplace_back(prefix + "step", host_i64(param_steps_[i]));
    for (const auto& [name, t] : state_[i]) out.emplace_back(prefix + name, t);
  }
  return out;
}

void Optimizer::load_state_dict(const nn::StateDict& state) {
  bool has_step = false;
  std::vector<std::vector<std::pair<std::string, Tensor>>> new_state(params_.size());
  std::vector<int64_t> new_steps(params_.size(), 0);
  int64_t steps = 0;
  double lr = lr_;
  auto scalar_of = [](const std::string& key, const Tensor& t) {
    TESSERA_CHECK(t.defined() && t.numel() == 1, "optimizer load_state_dict: \"", key,
                  "\" must hold one value, got shape ", t.defined() ? shape_str(t.shape()) : std::string("(undefined)"));
    return t.item();
  };
  for (const auto& [key, t] : state) {
    if (key == "step") {
      steps = static_cast<int64_t>(scalar_of(key, t));
      has_step = true;
      continue;
    }
    if (key == "lr") {
      lr = scalar_of(key, t);
      continue;
    }
    size_t index = 0;
    std::string name;
    TESSERA_CHECK(parse_state_key(key, index, name), "optimizer load_state_dict: unexpected key \"", key,
                  "\" (expected \"step\", \"lr\" or \"state.<param index>.<name>\")");
    TESSERA_CHECK(index < params_.size(), "optimizer load_state_dict: key \"", key, "\" names parameter ", index,
                  " but the optimizer has ", params_.size(), " parameters");
    if (name == "step") {
      new_steps[index] = static_cast<int64_t>(scalar_of(key, t));
      continue;
    }
    TESSERA_CHECK(std::find(state_names_.begin(), state_names_.end(), name) != state_names_.end(),
                  "optimizer load_state_dict: key \"", key, "\": \"", name,
                  "\" is not a state of this optimizer (check its options)");
    const Tensor& p = params_[index];
    TESSERA_CHECK(t.defined() && t.shape() == p.shape(), "optimizer load_state_dict: key \"", key, "\" has shape ",
                  t.defined() ? shape_str(t.shape()) : std::string("(undefined)"), " but parameter ", index,
                  " has shape ", shape_str(p.shape()));
    Tensor copy = Tensor::empty(p.shape(), state_dtype(p.dtype()), p.device());
    {
      NoGradGuard no_grad;
      copy_into(copy, t);
    }
    new_state[index].emplace_back(name, copy);
  }
  TESSERA_CHECK(has_step, "optimizer load_state_dict: key \"step\" is missing");
  state_ = std::move(new_state);
  param_steps_ = std::move(new_steps);
  steps_ = steps;
  lr_ = lr;
}

}  // namespace tessera::optim
