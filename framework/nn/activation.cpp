// Activation module (activation.h).
#include "framework/nn/activation.h"

#include "framework/ops/elementwise.h"

namespace tessera::nn {

const std::vector<std::string>& activation_names() {
  static const std::vector<std::string> names = {"relu", "gelu", "silu", "tanh", "sigmoid", "leaky_relu"};
  return names;
}

Activation::Activation(std::string name, double param) : name_(std::move(name)), param_(param) {
  const auto& names = activation_names();
  size_t i = 0;
  while (i < names.size() && names[i] != name_) ++i;
  if (i == names.size()) {
    std::string valid;
    for (const auto& n : names) valid += (valid.empty() ? "" : ", ") + n;
    detail::throw_error(detail::cat("Activation: unknown activation \"", name_, "\" (valid: ", valid, ")"));
  }
  kind_ = static_cast<Kind>(i);
  if (kind_ == Kind::leaky_relu && param_ == 0.0) param_ = 0.01;
}

Tensor Activation::forward(const Tensor& x) {
  switch (kind_) {
    case Kind::relu: return relu(x);
    case Kind::gelu: return gelu(x);
    case Kind::silu: return silu(x);
    case Kind::tanh: return tanh(x);
    case Kind::sigmoid: return sigmoid(x);
    case Kind::leaky_relu: return leaky_relu(x, param_);
  }
  TESSERA_ASSERT(false, "bad activation kind");
}

}  // namespace tessera::nn
