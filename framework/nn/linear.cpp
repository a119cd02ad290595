// Linear layer (linear.h).
#include "framework/nn/linear.h"

#include <cmath>

#include "framework/nn/init.h"
#include "framework/ops/matmul.h"

namespace tessera::nn {

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Generator* gen)
    : in_features_(in_features), out_features_(out_features) {
  TESSERA_CHECK(in_features > 0 && out_features > 0, "Linear: features must be positive, got in_features=",
                in_features, " out_features=", out_features);
  weight_ = register_parameter("weight", Tensor::empty({out_features, in_features}));
  init::kaiming_uniform_(weight_, std::sqrt(5.0), gen);
  if (bias) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    bias_ = register_parameter("bias", Tensor::empty({out_features}));
    init::uniform_(bias_, -bound, bound, gen);
  }
}

Tensor Linear::forward(const Tensor& x) {
  TESSERA_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == in_features_, "Linear(", in_features_, " -> ",
                out_features_, "): input of shape ", x.defined() ? shape_str(x.shape()) : std::string("(undefined)"),
                " does not end in ", in_features_);
  return linear(x, weight_, bias_);
}

}  // namespace tessera::nn
