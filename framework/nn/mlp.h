// MLP: a multi-layer perceptron built as a Sequential.
//
// defines: tessera::nn::MLP
//
// For each hidden width h: Linear(prev, h), LayerNorm(h) (if layer_norm), Activation,
// Dropout (if dropout > 0); then Linear(prev, out). Children are numbered like
// torch.nn.Sequential ("0.weight", "1.weight", ...), the layout of torchvision.ops.MLP
// without its final dropout.
#pragma once

#include <string>
#include <vector>

#include "framework/core/rng.h"
#include "framework/nn/sequential.h"

namespace tessera::nn {

class MLP : public Sequential {
 public:
  MLP(int64_t in_features, std::vector<int64_t> hidden, int64_t out_features, std::string activation = "relu",
      double dropout = 0.0, bool layer_norm = false, Generator* gen = nullptr);
};

}  // namespace tessera::nn
