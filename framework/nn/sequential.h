// Sequential: a chain of one-input modules, registered as children "0", "1", ...
//
// defines: tessera::nn::Sequential
//
// forward(x) runs the modules in order, feeding each the previous output. The child names
// match torch.nn.Sequential, so a state dict key reads "3.weight" as it would in PyTorch.
#pragma once

#include <memory>
#include <vector>

#include "framework/nn/module.h"

namespace tessera::nn {

class Sequential : public UnaryModule {
 public:
  Sequential() = default;
  // Appends `module` under the next index; returns it.
  std::shared_ptr<UnaryModule> add(std::shared_ptr<UnaryModule> module);
  Tensor forward(const Tensor& x) override;

  size_t size() const { return modules_.size(); }
  const std::shared_ptr<UnaryModule>& operator[](size_t i) const;

 private:
  std::vector<std::shared_ptr<UnaryModule>> modules_;
};

}  // namespace tessera::nn
