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
//
// Each parameter has its own step count (a parameter skipped for lack of a gradient does not
// advance), as in PyTorch, where Adam's bias correction uses the parameter's own step. State
// tensors are f32, or f64 for f64 parameters. state_dict() holds "step" (i64, the number of
// step() calls), "lr" (f64), "state.<i>.step" (i64) and "state.<i>.<name>" for every
// parameter that has state; load_state_dict() accepts only this optimizer's state names and
// shapes matching the parameters, and restores lr.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/nn/module.h"
#include "kernels/optim.h"

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
  // f32 on the param's device; f64 for f64 params), zero-filled when created.
  Tensor& state(size_t param_index, const std::string& name);
  bool has_state(size_t param_index, const std::string& name) const;
  int64_t param_step(size_t param_index) const { return param_steps_[param_index]; }

  // Parameters of one dtype on one device that have a gradient: one fused update each.
  struct UpdateGroup {
    DType dtype;
    Device device;
    std::vector<kernels::OptimTensor> tensors;
    std::vector<bool> fresh_state;  // per tensor: its state buffers were created by this call
    std::vector<Tensor> held;       // gradient copies (converted dtype or made contiguous)
  };
  // Called once per step() by subclasses: counts the step, advances the step of each parameter
  // that has a gradient, creates its state buffers `slot_names` (an empty name leaves that
  // OptimTensor::state slot null) and groups the parameters by dtype and device.
  std::vector<UpdateGroup> prepare_step(const std::vector<std::string>& slot_names);

  std::vector<Tensor> params_;
  double lr_;
  int64_t steps_ = 0;
  // Names load_state_dict() accepts under "state.<i>."; set by each subclass.
  std::vector<std::string> state_names_;

 private:
  std::vector<std::vector<std::pair<std::string, Tensor>>> state_;
  std::vector<int64_t> param_steps_;
};

}  // namespace tessera::optim
