// MlpClassifier: flatten, then nn::MLP.
#include "framework/models/classifier.h"

#include "framework/core/error.h"
#include "framework/nn/mlp.h"
#include "framework/ops/ops.h"

namespace tessera::models {

MlpClassifier::MlpClassifier(const ClassifierOptions& options, Generator* gen) : options_(options) {
  TESSERA_CHECK(options.in_features > 0 && options.classes > 1, "MlpClassifier: need in_features > 0 and classes > 1, got ",
                options.in_features, " and ", options.classes);
  for (int64_t hidden : options.hidden)
    TESSERA_CHECK(hidden > 0, "MlpClassifier: hidden widths must be positive, got ", hidden);
  mlp_ = register_module("mlp", std::static_pointer_cast<nn::UnaryModule>(std::make_shared<nn::MLP>(
                                    options.in_features, options.hidden, options.classes, options.activation,
                                    options.dropout, options.layer_norm, gen)));
}

Tensor MlpClassifier::forward(const Tensor& images) {
  TESSERA_CHECK(images.dim() >= 2 && images.numel() / images.size(0) == options_.in_features,
                "MlpClassifier: expected a batch [B, ...] of ", options_.in_features,
                " values per example, got shape ", shape_str(images.shape()));
  return mlp_->forward(images.flatten(1));
}

}  // namespace tessera::models
