// Normalisation layers over the last dimension: LayerNorm and RMSNorm.
//
// defines: tessera::nn::LayerNorm, RMSNorm
//
// LayerNorm(dim, eps = 1e-5, affine = true): parameters "weight" (ones) and "bias" (zeros)
// of shape [dim] when affine, as torch.nn.LayerNorm(dim). RMSNorm(dim, eps = 1e-6): parameter
// "weight" (ones). Both call the fused ops of framework/ops/norm.h.
#pragma once

#include "framework/nn/module.h"

namespace tessera::nn {

class LayerNorm : public UnaryModule {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) override;
  const Tensor& weight() const { return weight_; }  // undefined without affine
  const Tensor& bias() const { return bias_; }

 private:
  int64_t dim_;
  double eps_;
  Tensor weight_, bias_;
};

class RMSNorm : public UnaryModule {
 public:
  explicit RMSNorm(int64_t dim, double eps = 1e-6);
  Tensor forward(const Tensor& x) override;
  const Tensor& weight() const { return weight_; }

 private:
  int64_t dim_;
  double eps_;
  Tensor weight_;
};

}  // namespace tessera::nn
