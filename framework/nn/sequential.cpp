// Sequential container (sequential.h).
#include "framework/nn/sequential.h"

#include <string>

namespace tessera::nn {

std::shared_ptr<UnaryModule> Sequential::add(std::shared_ptr<UnaryModule> module) {
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(module);
  return module;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& module : modules_) y = module->forward(y);
  return y;
}

const std::shared_ptr<UnaryModule>& Sequential::operator[](size_t i) const {
  TESSERA_CHECK(i < modules_.size(), "Sequential: index ", i, " out of range (", modules_.size(), " modules)");
  return modules_[i];
}

}  // namespace tessera::nn
