// Optimizers: the common interface and state handling.
//
// defines: tessera::optim::Optimizer, OptimizerOptions
//
// An optimizer holds the parameter tensors (the same handles the module holds), updates them
// in place from their .grad under NoGradGuard, and skips parameters whose .grad is undefined
// (a GAN's idle network, a frozen layer). Its state (step count, moments) is exported as a
// StateDict of tensors with stable names ("state.<param index>.exp_avg", ...) plus scalars in
// `step`, so a checkpoint restores it exactly. On CUDA the update of all parameters is one
// multi-tensor kernel launch per dtype group. No host synchronisation happens in step(): the
// learning rate and other hyper-parameters are host scalars passed by value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/nn/module.h"

namespace tessera::optim {

class Optimizer {
 public:
  Optimizer(std::vector<Tensor> params, double lr);
  virtual ~Optimizer() = default;

  virtual void step() = 0;
  void zero_grad();  // drops every parameter's gradient (PyTorch's set_to_none)

  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  int64_t steps() const { return steps_; }
  const std::vector<Tensor>& params() const { return params_; }

  virtual nn::StateDict state_dict() const;
  virtual void load_state_dict(const nn::StateDict& state);

 protected:
  // Named per-parameter state tensors, created lazily by subclasses (same shape as the param,
  // f32 on the param's device).
  Tensor& state(size_t param_index, const std::string& name);
  bool has_state(size_t param_index, const std::string& name) const;

  std::vector<Tensor> params_;
  double lr_;
  int64_t steps_ = 0;

 private:
  std::vector<std::vector<std::pair<std::string, Tensor>>> state_;
};

}  // namespace tessera::optim
