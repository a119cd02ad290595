// SGD with momentum, dampening, weight decay and Nesterov momentum (torch.optim.SGD).
//
// defines: tessera::optim::SGD, SgdOptions
//
//   g += weight_decay * p;  buf = g on the first step, then momentum*buf + (1-dampening)*g;
//   g = nesterov ? g + momentum*buf : buf;  p -= lr * g
// State "momentum_buffer" exists only with momentum != 0. One fused kernel launch per dtype.
#pragma once

#include "framework/optim/optimizer.h"

namespace tessera::optim {

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SgdOptions options = {});
  void step() override;
  const SgdOptions& options() const { return options_; }

 private:
  SgdOptions options_;
};

}  // namespace tessera::optim
