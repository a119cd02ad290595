// Linear: y = x @ weight^T + bias, the fully connected layer.
//
// defines: tessera::nn::Linear
//
// Parameters "weight" [out, in] and "bias" [out] (absent with bias = false), initialised like
// torch.nn.Linear: weight by kaiming_uniform_(a = sqrt(5)), which is U(-1/sqrt(in), 1/sqrt(in)),
// and bias U(-1/sqrt(in), 1/sqrt(in)). Created f32 on the CPU; move with to().
#pragma once

#include "framework/core/rng.h"
#include "framework/nn/module.h"

namespace tessera::nn {

class Linear : public UnaryModule {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator* gen = nullptr);
  // x [..., in] -> [..., out]
  Tensor forward(const Tensor& x) override;

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined without bias

 private:
  int64_t in_features_, out_features_;
  Tensor weight_, bias_;
};

}  // namespace tessera::nn
