// LayerNorm and RMSNorm layers (norm.h).
#include "framework/nn/norm.h"

#include "framework/ops/norm.h"

namespace tessera::nn {
namespace {

void check_input(const char* layer, int64_t dim, const Tensor& x) {
  TESSERA_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == dim, layer, "(", dim, "): input of shape ",
                x.defined() ? shape_str(x.shape()) : std::string("(undefined)"), " does not end in ", dim);
}

}  // namespace

LayerNorm::LayerNorm(int64_t dim, double eps, bool affine) : dim_(dim), eps_(eps) {
  TESSERA_CHECK(dim > 0, "LayerNorm: dim must be positive, got ", dim);
  TESSERA_CHECK(eps >= 0.0, "LayerNorm: eps ", eps, " is negative");
  if (affine) {
    weight_ = register_parameter("weight", Tensor::ones({dim}));
    bias_ = register_parameter("bias", Tensor::zeros({dim}));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  check_input("LayerNorm", dim_, x);
  return layer_norm(x, weight_, bias_, eps_);
}

RMSNorm::RMSNorm(int64_t dim, double eps) : dim_(dim), eps_(eps) {
  TESSERA_CHECK(dim > 0, "RMSNorm: dim must be positive, got ", dim);
  TESSERA_CHECK(eps >= 0.0, "RMSNorm: eps ", eps, " is negative");
  weight_ = register_parameter("weight", Tensor::ones({dim}));
}

Tensor RMSNorm::forward(const Tensor& x) {
  check_input("RMSNorm", dim_, x);
  return rms_norm(x, weight_, eps_);
}

}  // namespace tessera::nn
