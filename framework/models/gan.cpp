// DcganGenerator and DcganCritic (gan.h): the layer stacks, DCGAN initialisation and the
// options' validation and JSON form (state.json "model", from which `tessera sample` and
// `tessera eval fid` rebuild the generator).
#include "framework/models/gan.h"

#include <algorithm>

#include "framework/core/error.h"
#include "framework/nn/layers.h"
#include "framework/ops/ops.h"

namespace tessera::models {
namespace {

void check_positive(const char* key, int64_t value) {
  TESSERA_CHECK(value > 0, "config key `", key, "` must be positive, got ", value);
}

// Conv weights N(0, 0.02), batch-norm weights N(1, 0.02), every bias 0 (Radford et al.).
void dcgan_init(nn::Sequential& net, Generator* gen) {
  for (size_t i = 0; i < net.size(); ++i) {
    nn::UnaryModule* layer = net[i].get();
    if (auto* conv = dynamic_cast<nn::Conv2d*>(layer)) {
      nn::init::normal_(conv->weight(), 0.0, 0.02, gen);
      if (conv->bias().defined()) nn::init::zeros_(conv->bias());
    } else if (auto* convt = dynamic_cast<nn::ConvTranspose2d*>(layer)) {
      nn::init::normal_(convt->weight(), 0.0, 0.02, gen);
      if (convt->bias().defined()) nn::init::zeros_(convt->bias());
    } else if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(layer)) {
      nn::init::normal_(bn->weight(), 1.0, 0.02, gen);
      nn::init::zeros_(bn->bias());
    }
  }
}

}  // namespace

const std::vector<std::string>& critic_norm_names() {
  static const std::vector<std::string> names = {"batch", "group", "none"};
  return names;
}

void GanOptions::validate() const {
  check_positive("model.latent", latent);
  check_positive("model.g_width", g_width);
  check_positive("model.d_width", d_width);
  TESSERA_CHECK(channels == 1 || channels == 3, "GAN images must have 1 or 3 channels, got ", channels);
  const auto& norms = critic_norm_names();
  TESSERA_CHECK(std::find(norms.begin(), norms.end(), d_norm) != norms.end(), "config key `model.d_norm` is \"",
                d_norm, "\"; expected one of: batch, group, none");
  if (d_norm == "group")
    TESSERA_CHECK(d_groups > 0 && (2 * d_width) % d_groups == 0, "config key `model.d_groups`=", d_groups,
                  " must divide the critic's 2 * `model.d_width` = ", 2 * d_width, " channels");
  TESSERA_CHECK(init == "dcgan" || init == "default", "config key `model.init` is \"", init,
                "\"; expected one of: dcgan, default");
}

nlohmann::json GanOptions::to_json() const {
  return {{"latent", latent}, {"g_width", g_width}, {"d_width", d_width}, {"channels", channels},
          {"d_norm", d_norm}, {"d_groups", d_groups}, {"init", init}};
}

GanOptions GanOptions::from_json(const nlohmann::json& j, const std::string& where) {
  GanOptions o;
  try {
    o.latent = j.at("latent").get<int64_t>();
    o.g_width = j.at("g_width").get<int64_t>();
    o.d_width = j.at("d_width").get<int64_t>();
    o.channels = j.at("channels").get<int64_t>();
    o.d_norm = j.at("d_norm").get<std::string>();
    o.d_groups = j.at("d_groups").get<int64_t>();
    o.init = j.at("init").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    detail::throw_error(detail::cat(where, ": the GAN model description is incomplete or mistyped (", e.what(), ")"));
  }
  o.validate();
  return o;
}

DcganGenerator::DcganGenerator(const GanOptions& options, Generator* gen) : options_(options) {
  options.validate();
  const int64_t w = options.g_width;
  net_ = register_module("net", std::make_shared<nn::Sequential>());
  net_->add(std::make_shared<nn::ConvTranspose2d>(options.latent, 2 * w,
                                                  nn::ConvTranspose2dSettings{.kernel = 7, .bias = false}, gen));
  net_->add(std::make_shared<nn::BatchNorm2d>(2 * w));
  net_->add(std::make_shared<nn::Activation>("relu"));
  net_->add(std::make_shared<nn::ConvTranspose2d>(
      2 * w, w, nn::ConvTranspose2dSettings{.kernel = 4, .stride = 2, .padding = 1, .bias = false}, gen));
  net_->add(std::make_shared<nn::BatchNorm2d>(w));
  net_->add(std::make_shared<nn::Activation>("relu"));
  net_->add(std::make_shared<nn::ConvTranspose2d>(
      w, options.channels, nn::ConvTranspose2dSettings{.kernel = 4, .stride = 2, .padding = 1}, gen));
  net_->add(std::make_shared<nn::Activation>("tanh"));
  if (options.init == "dcgan") dcgan_init(*net_, gen);
}

Tensor DcganGenerator::forward(const Tensor& z) {
  const int64_t latent = options_.latent;
  const bool flat = z.defined() && z.dim() == 2 && z.size(1) == latent;
  const bool image = z.defined() && z.dim() == 4 && z.size(1) == latent && z.size(2) == 1 && z.size(3) == 1;
  TESSERA_CHECK(flat || image, "DcganGenerator: expected z [B, ", latent, "] or [B, ", latent, ", 1, 1], got ",
                z.defined() ? shape_str(z.shape()) : std::string("(undefined)"));
  return net_->forward(flat ? z.reshape({z.size(0), latent, 1, 1}) : z);
}

DcganCritic::DcganCritic(const GanOptions& options, Generator* gen) : options_(options) {
  options.validate();
  const int64_t w = options.d_width;
  const bool norm = options.d_norm != "none";
  net_ = register_module("net", std::make_shared<nn::Sequential>());
  net_->add(std::make_shared<nn::Conv2d>(options.channels, w,
                                         nn::Conv2dSettings{.kernel = 4, .stride = 2, .padding = 1}, gen));
  net_->add(std::make_shared<nn::Activation>("leaky_relu", 0.2));
  net_->add(std::make_shared<nn::Conv2d>(
      w, 2 * w, nn::Conv2dSettings{.kernel = 4, .stride = 2, .padding = 1, .bias = !norm}, gen));
  if (options.d_norm == "batch") net_->add(std::make_shared<nn::BatchNorm2d>(2 * w));
  if (options.d_norm == "group") net_->add(std::make_shared<nn::GroupNorm>(options.d_groups, 2 * w));
  net_->add(std::make_shared<nn::Activation>("leaky_relu", 0.2));
  net_->add(std::make_shared<nn::Conv2d>(2 * w, 1, nn::Conv2dSettings{.kernel = 7}, gen));
  net_->add(std::make_shared<nn::Flatten>());
  if (options.init == "dcgan") dcgan_init(*net_, gen);
}

Tensor DcganCritic::forward(const Tensor& images) {
  const int64_t s = DcganGenerator::kImageSize;
  TESSERA_CHECK(images.defined() && images.dim() == 4 && images.size(1) == options_.channels && images.size(2) == s &&
                    images.size(3) == s,
                "DcganCritic: expected images [B, ", options_.channels, ", ", s, ", ", s, "], got ",
                images.defined() ? shape_str(images.shape()) : std::string("(undefined)"));
  return net_->forward(images).reshape({images.size(0)});
}

}  // namespace tessera::models
