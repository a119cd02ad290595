// Dropout layer (dropout.h).
#include "framework/nn/dropout.h"

#include "framework/ops/dropout.h"

namespace tessera::nn {

Dropout::Dropout(double p, Generator* gen) : p_(p), gen_(gen) {
  TESSERA_CHECK(p >= 0.0 && p < 1.0, "Dropout: probability ", p, " is outside [0, 1)");
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, is_training(), gen_); }

}  // namespace tessera::nn
