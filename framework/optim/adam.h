// Adam and AdamW (torch.optim.Adam / AdamW), with bias correction.
//
// defines: tessera::optim::Adam, AdamW, AdamOptions, AdamWOptions
//
//   Adam:  g += weight_decay * p          AdamW: p *= 1 - lr * weight_decay (decoupled)
//   m = beta1*m + (1-beta1)*g;  v = beta2*v + (1-beta2)*g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// with t the parameter's own step count. State: "exp_avg", "exp_avg_sq". The update of all
// parameters of one dtype is one fused kernel launch (kernels/optim.h).
#pragma once

#include "framework/optim/optimizer.h"

namespace tessera::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

// Same fields; PyTorch's AdamW default weight decay is 0.01.
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options = {});
  void step() override;
  const AdamOptions& options() const { return options_; }
  bool decoupled_weight_decay() const { return decoupled_; }

 protected:
  Adam(std::vector<Tensor> params, AdamOptions options, bool decoupled_weight_decay);

 private:
  AdamOptions options_;
  bool decoupled_;
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions options = {});
};

}  // namespace tessera::optim
