// Image classifiers: the Fashion-MNIST MLP of Stage 1 and the small CNN whose penultimate
// features the GAN image metric (`tessera eval fid`) uses.
//
// defines: tessera::models::ClassifierOptions, MlpClassifier, CnnClassifierOptions, CnnClassifier
//
// MlpClassifier flattens each image ([B, C, H, W] or any [B, ...]) to `in_features` values and
// runs an nn::MLP: Linear (-> LayerNorm) -> activation (-> dropout) for each hidden width, then
// a Linear to `classes` logits. The layers live in the child "mlp", so state-dict names read
// "mlp.<i>.weight" the way PyTorch names an nn.Sequential inside a module.
//
// CnnClassifier: for each width c of `channels`, Conv2d(3x3, padding 1, no bias) -> BatchNorm2d
// -> ReLU -> AvgPool2d(2) (28 -> 14 -> 7), then Flatten -> Linear(-> hidden) -> ReLU, which
// is the feature vector (features()), and a Linear to the logits. Children "body" (everything up
// to the features, numbered like torch.nn.Sequential) and "head".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

struct CnnClassifierOptions {
  int64_t in_channels = 1;
  int64_t image_size = 28;                 // square images; halved by each pooling
  std::vector<int64_t> channels = {32, 64};
  int64_t hidden = 128;                    // feature width (FID's feature space)
  int64_t classes = 10;

  void validate() const;  // errors name the config key (`model.channels`, ...)
  nlohmann::json to_json() const;
  static CnnClassifierOptions from_json(const nlohmann::json& j, const std::string& where);
};

class CnnClassifier : public nn::UnaryModule {
 public:
  explicit CnnClassifier(const CnnClassifierOptions& options, Generator* gen = nullptr);
  // images [B, in_channels, size, size] -> logits [B, classes]
  Tensor forward(const Tensor& images) override;
  // images -> the penultimate activations [B, hidden]
  Tensor features(const Tensor& images);
  const CnnClassifierOptions& options() const { return options_; }

 private:
  CnnClassifierOptions options_;
  std::shared_ptr<nn::UnaryModule> body_, head_;
};

}  // namespace tessera::models
