// Image classifiers: the Fashion-MNIST model of Stage 1 (and, later, the feature network that
// GAN image metrics use).
//
// defines: tessera::models::ClassifierOptions, MlpClassifier
//
// MlpClassifier flattens each image ([B, C, H, W] or any [B, ...]) to `in_features` values and
// runs an nn::MLP: Linear (-> LayerNorm) -> activation (-> dropout) for each hidden width, then
// a Linear to `classes` logits. The layers live in the child "mlp", so state-dict names read
// "mlp.<i>.weight" the way PyTorch names an nn.Sequential inside a module.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "framework/core/rng.h"
#include "framework/nn/module.h"

namespace tessera::models {

struct ClassifierOptions {
  int64_t in_features = 28 * 28;
  std::vector<int64_t> hidden = {256, 128};
  int64_t classes = 10;
  std::string activation = "relu";  // any name of nn::activation_names()
  double dropout = 0.0;             // after each hidden activation, in training mode
  bool layer_norm = false;          // LayerNorm after each hidden Linear
};

class MlpClassifier : public nn::UnaryModule {
 public:
  // Parameters are drawn from `gen` (the default generator when null), f32 on the CPU.
  explicit MlpClassifier(const ClassifierOptions& options, Generator* gen = nullptr);
  // images [B, ...] with in_features values per example -> logits [B, classes]
  Tensor forward(const Tensor& images) override;
  const ClassifierOptions& options() const { return options_; }

 private:
  ClassifierOptions options_;
  std::shared_ptr<nn::UnaryModule> mlp_;
};

}  // namespace tessera::models
