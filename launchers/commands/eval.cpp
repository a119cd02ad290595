// `tessera eval`: image-quality metrics of trained models.
//
//   tessera eval fid --classifier runs/cnn --generator runs/dcgan [--samples 10000] [--device cuda]
//
// fid: the Fréchet distance (framework/train/frechet.h) between Gaussians fitted to the
// penultimate-layer features of a Fashion-MNIST CNN classifier (examples/classifier/
// fmnist_cnn.toml; its state.json "model" and "pixel_range" say how to rebuild and feed it) for
//   * the real test split (all 10,000 images) and --samples generated images (the generator
//     in eval mode, noise seeded by --seed), and
//   * the floor: the same test features against --samples real train images (a seeded random
//     subset), i.e. what a perfect generator would score with that many samples.
// Both numbers are printed:
//   fid: 31.2345 (generated vs test, 10000 samples)
//   fid floor: 1.2345 (train vs test, 10000 samples)
// Generated images in [-1, 1] are mapped to the classifier's pixel range first.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "framework/core/error.h"
#include "framework/core/rng.h"
#include "framework/data/batch_sampler.h"
#include "framework/data/fashion_mnist.h"
#include "framework/models/classifier.h"
#include "framework/models/gan.h"
#include "framework/ops/ops.h"
#include "framework/train/checkpoint.h"
#include "framework/train/frechet.h"
#include "launchers/command.h"

namespace {

using namespace tessera;
namespace fs = std::filesystem;

struct FidFlags {
  std::string classifier;
  std::string generator;
  int64_t samples = 10000;
  int64_t batch = 500;
  uint64_t seed = 0;
  std::string data_dir = data::FashionMnist::kDefaultDir;
  std::string device = "cpu";
};

// Concatenated [n, d] feature rows of batches produced by `next(begin, end)` (images on device).
template <typename ImagesFn>
Tensor features_of(models::CnnClassifier& classifier, int64_t n, int64_t batch, ImagesFn next) {
  std::vector<Tensor> parts;
  for (int64_t begin = 0; begin < n; begin += batch) {
    const int64_t end = std::min(n, begin + batch);
    parts.push_back(cast(classifier.features(next(begin, end)), DType::f32));
  }
  return cat(parts, 0);
}

void run_fid(const FidFlags& f) {
  const Device device = Device::parse(f.device);
  require_device(device);
  const train::Checkpoint cls_ckpt = train::load_job_checkpoint("--classifier", f.classifier, "classifier");
  const std::string cls_where = (fs::path(cls_ckpt.dir) / "state.json").string();
  TESSERA_CHECK(cls_ckpt.state.at("model").value("kind", "") == "cnn", "--classifier ", cls_ckpt.dir,
                ": FID needs the CNN classifier's features (model.kind = \"cnn\", examples/classifier/",
                "fmnist_cnn.toml); this checkpoint holds a \"", cls_ckpt.state.at("model").value("kind", "?"), "\"");
  models::CnnClassifier classifier(models::CnnClassifierOptions::from_json(cls_ckpt.state.at("model"), cls_where));
  classifier.load_state_dict(cls_ckpt.file("model"));
  classifier.to(device);
  classifier.eval();
  const data::PixelRange range = data::parse_pixel_range(cls_ckpt.state.value("pixel_range", "0,1"));

  const train::Checkpoint gan_ckpt = train::load_job_checkpoint("--generator", f.generator, "gan");
  const models::GanOptions gan_options =
      models::GanOptions::from_json(gan_ckpt.state.at("model"), (fs::path(gan_ckpt.dir) / "state.json").string());
  models::DcganGenerator g(gan_options);
  g.load_state_dict(gan_ckpt.file("generator"));
  g.to(device);
  g.eval();

  NoGradGuard no_grad;
  const data::FashionMnist test_set(f.data_dir, data::Split::test, range);
  const data::FashionMnist train_set(f.data_dir, data::Split::train, range);
  TESSERA_CHECK(f.samples >= 2 && f.samples <= train_set.size(), "--samples must be in [2, ", train_set.size(),
                "], got ", f.samples);
  const Tensor test_features = features_of(classifier, test_set.size(), f.batch, [&](int64_t b, int64_t e) {
    return test_set.range(b, e).first.to(device);
  });
  const std::vector<int64_t> order = data::epoch_permutation(train_set.size(), f.seed, 0);
  const Tensor train_features = features_of(classifier, f.samples, f.batch, [&](int64_t b, int64_t e) {
    return train_set.batch(std::vector<int64_t>(order.begin() + b, order.begin() + e)).first.to(device);
  });
  Generator noise(f.seed);
  const Tensor fake_features = features_of(classifier, f.samples, f.batch, [&](int64_t b, int64_t e) {
    const Tensor images = g(randn({e - b, gan_options.latent}, 0.0, 1.0, DType::f32, device, &noise));
    return range == data::PixelRange::zero_one ? affine(images, 0.5, 0.5) : images;
  });

  const train::FeatureStats test_stats = train::feature_stats(test_features);
  const double fid = train::frechet_distance(train::feature_stats(fake_features), test_stats);
  const double floor = train::frechet_distance(train::feature_stats(train_features), test_stats);
  std::printf("classifier %s (%lld features), generator %s (step %lld)\n", cls_ckpt.dir.c_str(),
              static_cast<long long>(test_features.size(1)), gan_ckpt.dir.c_str(),
              static_cast<long long>(gan_ckpt.step));
  std::printf("fid: %.4f (generated vs test, %lld samples)\n", fid, static_cast<long long>(f.samples));
  std::printf("fid floor: %.4f (train vs test, %lld samples)\n", floor, static_cast<long long>(f.samples));
}

}  // namespace

TESSERA_COMMAND(eval, "Evaluate trained models: `eval fid` (Fréchet distance of GAN samples in a classifier's features)",
                [](CLI::App& app) {
                  app.require_subcommand(1);
                  auto f = std::make_shared<FidFlags>();
                  CLI::App* fid = app.add_subcommand(
                      "fid",
                      "FID of a GAN generator against the Fashion-MNIST test split, in the penultimate features of "
                      "a CNN classifier, printed next to the real-vs-real floor (train split vs test split)");
                  fid->add_option("--classifier", f->classifier, "CNN classifier run or step_<N> directory")
                      ->required();
                  fid->add_option("--generator", f->generator, "GAN run or step_<N> directory")->required();
                  fid->add_option("--samples", f->samples, "Generated images (and train images for the floor)")
                      ->capture_default_str();
                  fid->add_option("--batch", f->batch, "Images per forward pass")
                      ->capture_default_str()
                      ->check(CLI::PositiveNumber);
                  fid->add_option("--seed", f->seed, "Seed of the noise and of the train subset")->capture_default_str();
                  fid->add_option("--data-dir", f->data_dir, "Fashion-MNIST directory")->capture_default_str();
                  fid->add_option("--device", f->device, "cpu, cuda or cuda:N")->capture_default_str();
                  fid->callback([f] { run_fid(*f); });
                });
