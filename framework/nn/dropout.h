// Dropout: zeroes elements with probability p in training mode, the identity in eval mode.
//
// defines: tessera::nn::Dropout
//
// Kept elements are scaled by 1/(1-p) (tessera::dropout, framework/ops/dropout.h). The mask
// comes from `gen` (the default generator when null).
#pragma once

#include "framework/core/rng.h"
#include "framework/nn/module.h"

namespace tessera::nn {

class Dropout : public UnaryModule {
 public:
  explicit Dropout(double p, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  double p() const { return p_; }

 private:
  double p_;
  Generator* gen_;
};

}  // namespace tessera::nn
