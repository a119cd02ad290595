// Activation: an elementwise nonlinearity chosen by name, as a module.
//
// defines: tessera::nn::Activation, activation_names
//
// Names: relu, gelu (tanh approximation, torch's GELU(approximate="tanh")), silu, tanh,
// sigmoid, leaky_relu (`param` is the negative slope; 0, the default, means torch's 0.01).
// An unknown name is an error that lists the valid ones.
#pragma once

#include <string>
#include <vector>

#include "framework/nn/module.h"

namespace tessera::nn {

const std::vector<std::string>& activation_names();

class Activation : public UnaryModule {
 public:
  explicit Activation(std::string name, double param = 0.0);
  Tensor forward(const Tensor& x) override;
  const std::string& name() const { return name_; }

 private:
  enum class Kind { relu, gelu, silu, tanh, sigmoid, leaky_relu };
  std::string name_;
  Kind kind_;
  double param_;
};

}  // namespace tessera::nn
