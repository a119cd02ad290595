// read_gan_settings (gan_settings.h): loss-dependent defaults, then check_all_used, then values.
#include "framework/train/jobs/gan_settings.h"

#include <algorithm>

#include "framework/core/error.h"
#include "framework/data/fashion_mnist.h"

namespace tessera::train {
namespace {

// optim_g.* / optim_d.*: the keys of the other optimizer kind are not read (so they are errors).
GanOptimizerSettings read_optimizer(const Config& c, const std::string& prefix, const std::string& loss,
                                    std::vector<double>& betas) {
  GanOptimizerSettings o;
  const bool rmsprop_default = loss == "wgan_clip";
  o.name = c.get_string(prefix + ".name", rmsprop_default ? "rmsprop" : "adam");
  o.lr = c.get_double(prefix + ".lr", loss == "bce" ? 2e-4 : loss == "wgan_clip" ? 5e-5 : 1e-4);
  o.eps = c.get_double(prefix + ".eps", 1e-8);
  o.weight_decay = c.get_double(prefix + ".weight_decay", 0.0);
  if (o.name == "rmsprop") {
    o.alpha = c.get_double(prefix + ".alpha", 0.99);
  } else {
    betas = c.get_double_list(prefix + ".betas", loss == "wgan_gp" ? std::vector<double>{0.0, 0.9}
                                                                     : std::vector<double>{0.5, 0.999});
  }
  return o;
}

void validate_optimizer(GanOptimizerSettings& o, const std::string& prefix, const std::vector<double>& betas) {
  check_choice(o.name, {"adam", "rmsprop"}, prefix + ".name");
  TESSERA_CHECK(o.lr > 0, "config key `", prefix, ".lr` must be positive, got ", o.lr);
  TESSERA_CHECK(o.eps > 0, "config key `", prefix, ".eps` must be positive, got ", o.eps);
  TESSERA_CHECK(o.weight_decay >= 0, "config key `", prefix, ".weight_decay` must not be negative, got ",
                o.weight_decay);
  if (o.name == "rmsprop") {
    TESSERA_CHECK(o.alpha >= 0 && o.alpha < 1, "config key `", prefix, ".alpha` must be in [0, 1), got ", o.alpha);
  } else {
    TESSERA_CHECK(betas.size() == 2 && betas[0] >= 0 && betas[0] < 1 && betas[1] >= 0 && betas[1] < 1,
                  "config key `", prefix, ".betas` must be two numbers in [0, 1), like [0.5, 0.999]");
    o.beta1 = betas[0];
    o.beta2 = betas[1];
  }
}

}  // namespace

const std::vector<std::string>& gan_loss_names() {
  static const std::vector<std::string> names = {"bce", "wgan_clip", "wgan_gp"};
  return names;
}

GanSettings read_gan_settings(const Config& c) {
  GanSettings s;
  s.seed = static_cast<uint64_t>(c.get_int("seed", 0));
  s.data_dir = c.get_string("data.dir", data::FashionMnist::kDefaultDir);
  s.loss = c.get_string("gan.loss", "bce");
  const bool known_loss =
      std::find(gan_loss_names().begin(), gan_loss_names().end(), s.loss) != gan_loss_names().end();
  s.n_critic = c.get_int("gan.n_critic", s.loss == "bce" || !known_loss ? 1 : 5);
  if (s.loss == "wgan_clip") s.clip = c.get_double("gan.clip", 0.01);
  if (s.loss == "wgan_gp") s.gp_weight = c.get_double("gan.gp_weight", 10.0);

  s.model.latent = c.get_int("model.latent", 64);
  s.model.g_width = c.get_int("model.g_width", 64);
  s.model.d_width = c.get_int("model.d_width", 64);
  s.model.d_norm = c.get_string("model.d_norm", s.loss == "wgan_gp" ? "none" : "batch");
  if (s.model.d_norm == "group") s.model.d_groups = c.get_int("model.d_groups", 8);
  s.model.init = c.get_string("model.init", "dcgan");

  s.batch_size = c.get_int("train.batch_size", 64);
  const bool has_steps = c.has("train.steps");
  if (has_steps) s.steps = c.get_int("train.steps");
  s.stop_at = c.get_int("train.stop_at", 0);

  std::vector<double> betas_g, betas_d;
  s.optim_g = read_optimizer(c, "optim_g", s.loss, betas_g);
  s.optim_d = read_optimizer(c, "optim_d", s.loss, betas_d);

  s.sample_every = c.get_int("sample.every", 500);
  s.sample_seed = static_cast<uint64_t>(c.get_int("sample.seed", 1234));
  s.log_every = c.get_int("log.every", 50);
  s.checkpoint_every = c.get_int("checkpoint.every", 0);
  s.checkpoint_keep = c.get_int("checkpoint.keep", 3);
  s.dist = read_dist_settings(c);
  s.sync_batchnorm = c.get_bool("dist.sync_batchnorm", false);

  c.check_all_used();

  check_choice(s.loss, gan_loss_names(), "gan.loss");
  check_positive(s.n_critic, "gan.n_critic");
  if (s.loss == "wgan_clip") TESSERA_CHECK(s.clip > 0, "config key `gan.clip` must be positive, got ", s.clip);
  if (s.loss == "wgan_gp")
    TESSERA_CHECK(s.gp_weight >= 0, "config key `gan.gp_weight` must not be negative, got ", s.gp_weight);
  s.model.validate();
  TESSERA_CHECK(!(s.loss == "wgan_gp" && s.model.d_norm == "batch"), "config key `model.d_norm` = \"batch\" does not ",
                "go with `gan.loss` = \"wgan_gp\": batch norm couples the images of a batch, and the gradient ",
                "penalty is per image; use \"none\" or \"group\"");
  TESSERA_CHECK(has_steps, "config key `train.steps` (generator steps) is required",
                c.source().empty() ? "" : " in ", c.source());
  check_positive(s.steps, "train.steps");
  check_positive(s.batch_size, "train.batch_size");
  TESSERA_CHECK(s.stop_at >= 0, "config key `train.stop_at` must not be negative (0: run to the end)");
  validate_optimizer(s.optim_g, "optim_g", betas_g);
  validate_optimizer(s.optim_d, "optim_d", betas_d);
  TESSERA_CHECK(s.sample_every >= 0 && s.checkpoint_every >= 0, "config keys `sample.every` and `checkpoint.every` ",
                "must not be negative (0 means: only at the end)");
  check_positive(s.log_every, "log.every");
  s.dist.validate();
  if (s.dist.zero) {
    for (const auto* o : {&s.optim_g, &s.optim_d})
      TESSERA_CHECK(o->name == "adam" && o->weight_decay == 0.0, "config key `dist.zero` = 1 (ZeRO-1 sharded ",
                    "AdamW) needs `optim_g.name` and `optim_d.name` = \"adam\" without weight decay (AdamW with ",
                    "decay 0 is Adam); got \"", o->name, "\" with weight_decay ", o->weight_decay);
  }
  return s;
}

}  // namespace tessera::train
