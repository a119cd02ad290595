// RMSprop (torch.optim.RMSprop): optional weight decay, momentum and centering.
//
// defines: tessera::optim::RMSprop, RmspropOptions
//
//   g += weight_decay * p;  sq = alpha*sq + (1-alpha)*g^2
//   centered: ga = alpha*ga + (1-alpha)*g, avg = sqrt(sq - ga^2) + eps;  else avg = sqrt(sq) + eps
//   momentum > 0: buf = momentum*buf + g/avg, p -= lr*buf;  else p -= lr*g/avg
// State: "square_avg", "momentum_buffer" (momentum > 0), "grad_avg" (centered). One fused
// kernel launch per dtype.
#pragma once

#include "framework/optim/optimizer.h"

namespace tessera::optim {

struct RmspropOptions {
  double lr = 0.01;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
};

class RMSprop : public Optimizer {
 public:
  RMSprop(std::vector<Tensor> params, RmspropOptions options = {});
  void step() override;
  const RmspropOptions& options() const { return options_; }

 private:
  RmspropOptions options_;
};

}  // namespace tessera::optim
