// Module: the base of every layer and model — named parameters, buffers and children.
//
// defines: tessera::nn::Module, UnaryModule, StateDict
//
// A module registers its parameters (leaf tensors that require grad), buffers (state that is
// saved but not trained, e.g. running statistics) and child modules under names; traversal is
// in registration order and names are dotted paths ("blocks.0.attn.qkv.weight"), the same
// names PyTorch would give an equivalent model, so state dicts load across both.
// `to(device)` / `to(dtype)` convert parameters in place: Tensor handles held elsewhere (an
// optimizer) stay valid. Forward signatures differ per module; UnaryModule is the common
// one-tensor-in, one-tensor-out interface that Sequential chains.
// A tensor registered under two names (tied weights) is listed once by named_parameters()
// and parameters(), and under both keys by state_dict(), as in PyTorch.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "framework/core/tensor.h"

namespace tessera::nn {

using StateDict = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;

  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  // Every descendant (children, their children, ...) by dotted name, depth first.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules() const;
  int64_t parameter_count() const;

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Parameters then buffers, by dotted name. Tensors share storage with the module.
  // Order: each module's parameters, then its buffers, then its children (PyTorch's order).
  StateDict state_dict() const;
  // Copies values in (converting dtype, keeping each parameter's device). strict: every key of
  // the module must be present and no unknown key may appear; errors name the key and shapes.
  void load_state_dict(const StateDict& state, bool strict = true);

  // Both convert gradients too, and keep tied parameters tied.
  void to(Device device);
  void to(DType dtype);  // floating parameters and buffers only
  void zero_grad();

 protected:
  Tensor register_parameter(const std::string& name, Tensor value);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    check_child(name, module.get());
    children_.emplace_back(name, module);
    return module;
  }
  // Called by train(); modules with train/eval behaviour may override.
  virtual void on_train_mode(bool) {}

 private:
  void collect(const std::string& prefix, bool parameters, std::vector<std::pair<std::string, Tensor>>& out) const;
  void state_dict_into(const std::string& prefix, StateDict& out) const;
  bool name_taken(const std::string& name) const;
  void check_child(const std::string& name, const Module* child) const;
  void convert(std::optional<Device> device, std::optional<DType> dtype);

  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

class UnaryModule : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
};

}  // namespace tessera::nn
