// MLP (mlp.h).
#include "framework/nn/mlp.h"

#include "framework/nn/activation.h"
#include "framework/nn/dropout.h"
#include "framework/nn/linear.h"
#include "framework/nn/norm.h"

namespace tessera::nn {

MLP::MLP(int64_t in_features, std::vector<int64_t> hidden, int64_t out_features, std::string activation,
         double dropout, bool layer_norm, Generator* gen) {
  TESSERA_CHECK(dropout >= 0.0 && dropout < 1.0, "MLP: dropout ", dropout, " is outside [0, 1)");
  static_cast<void>(Activation{activation});  // rejects an unknown name even without hidden layers
  int64_t previous = in_features;
  for (int64_t width : hidden) {
    add(std::make_shared<Linear>(previous, width, true, gen));
    if (layer_norm) add(std::make_shared<LayerNorm>(width));
    add(std::make_shared<Activation>(activation));
    if (dropout > 0.0) add(std::make_shared<Dropout>(dropout, gen));
    previous = width;
  }
  add(std::make_shared<Linear>(previous, out_features, true, gen));
}

}  // namespace tessera::nn
