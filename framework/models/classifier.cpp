// MlpClassifier (flatten, then nn::MLP) and CnnClassifier (conv-bn-relu-pool blocks, a hidden
// Linear whose activations are the features, a Linear head).
#include "framework/models/classifier.h"

#include "framework/core/error.h"
#include "framework/nn/layers.h"
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

void CnnClassifierOptions::validate() const {
  TESSERA_CHECK(in_channels > 0 && classes > 1, "CnnClassifier: need in_channels > 0 and classes > 1, got ",
                in_channels, " and ", classes);
  TESSERA_CHECK(!channels.empty(), "config key `model.channels` must list at least one convolution width");
  int64_t size = image_size;
  for (int64_t c : channels) {
    TESSERA_CHECK(c > 0, "config key `model.channels` must hold positive widths, got ", c);
    TESSERA_CHECK(size % 2 == 0, "config key `model.channels`: ", channels.size(), " poolings do not fit ",
                  image_size, "x", image_size, " images (", size, " is odd)");
    size /= 2;
  }
  TESSERA_CHECK(hidden > 0, "config key `model.hidden` must be one positive width for the CNN, got ", hidden);
}

nlohmann::json CnnClassifierOptions::to_json() const {
  return {{"kind", "cnn"},        {"in_channels", in_channels}, {"image_size", image_size},
          {"channels", channels}, {"hidden", hidden},           {"classes", classes}};
}

CnnClassifierOptions CnnClassifierOptions::from_json(const nlohmann::json& j, const std::string& where) {
  CnnClassifierOptions o;
  try {
    TESSERA_CHECK(j.at("kind").get<std::string>() == "cnn", where, ": the model is a \"", j.at("kind").get<std::string>(),
                  "\" classifier, not a CNN");
    o.in_channels = j.at("in_channels").get<int64_t>();
    o.image_size = j.at("image_size").get<int64_t>();
    o.channels = j.at("channels").get<std::vector<int64_t>>();
    o.hidden = j.at("hidden").get<int64_t>();
    o.classes = j.at("classes").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    detail::throw_error(detail::cat(where, ": the CNN classifier description is incomplete or mistyped (", e.what(), ")"));
  }
  o.validate();
  return o;
}

CnnClassifier::CnnClassifier(const CnnClassifierOptions& options, Generator* gen) : options_(options) {
  options.validate();
  auto body = std::make_shared<nn::Sequential>();
  int64_t in = options.in_channels, size = options.image_size;
  for (int64_t c : options.channels) {
    body->add(std::make_shared<nn::Conv2d>(in, c, nn::Conv2dSettings{.kernel = 3, .padding = 1, .bias = false}, gen));
    body->add(std::make_shared<nn::BatchNorm2d>(c));
    body->add(std::make_shared<nn::Activation>("relu"));
    body->add(std::make_shared<nn::AvgPool2d>(Size2(2)));
    in = c;
    size /= 2;
  }
  body->add(std::make_shared<nn::Flatten>());
  body->add(std::make_shared<nn::Linear>(in * size * size, options.hidden, true, gen));
  body->add(std::make_shared<nn::Activation>("relu"));
  body_ = register_module("body", std::static_pointer_cast<nn::UnaryModule>(body));
  head_ = register_module("head", std::static_pointer_cast<nn::UnaryModule>(
                                      std::make_shared<nn::Linear>(options.hidden, options.classes, true, gen)));
}

Tensor CnnClassifier::features(const Tensor& images) {
  const int64_t s = options_.image_size;
  TESSERA_CHECK(images.defined() && images.dim() == 4 && images.size(1) == options_.in_channels &&
                    images.size(2) == s && images.size(3) == s,
                "CnnClassifier: expected images [B, ", options_.in_channels, ", ", s, ", ", s, "], got ",
                images.defined() ? shape_str(images.shape()) : std::string("(undefined)"));
  return body_->forward(images);
}

Tensor CnnClassifier::forward(const Tensor& images) { return head_->forward(features(images)); }

}  // namespace tessera::models
