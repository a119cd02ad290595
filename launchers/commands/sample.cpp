// `tessera sample`: a PNG grid of images from a GAN checkpoint's generator.
//
//   tessera sample --checkpoint runs/dcgan --out grid.png [--seed S] [--count 64] [--device cuda]
//
// The checkpoint's state.json "model" describes the networks (framework/models/gan.h); the
// weights are generator.safetensors. The noise is N(0, 1) from a Philox generator seeded with
// --seed (the same images on CPU and CUDA up to rounding); the generator runs in eval mode
// (batch-norm running statistics). Images are tiled 8 to a row, mapped from [-1, 1] to 0..255.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "framework/core/error.h"
#include "framework/core/rng.h"
#include "framework/data/png.h"
#include "framework/models/gan.h"
#include "framework/ops/ops.h"
#include "framework/train/checkpoint.h"
#include "launchers/command.h"

namespace {

using namespace tessera;
namespace fs = std::filesystem;

struct SampleFlags {
  std::string checkpoint;
  std::string out;
  uint64_t seed = 0;
  int64_t count = 64;
  int64_t columns = 8;
  std::string device = "cpu";
};

void run_sample(const SampleFlags& f) {
  const Device device = Device::parse(f.device);
  require_device(device);
  const train::Checkpoint ckpt = train::load_job_checkpoint("--checkpoint", f.checkpoint, "gan");
  const std::string& dir = ckpt.dir;
  const models::GanOptions options =
      models::GanOptions::from_json(ckpt.state.at("model"), (fs::path(dir) / "state.json").string());
  models::DcganGenerator g(options);
  g.load_state_dict(ckpt.file("generator"));
  g.to(device);
  g.eval();

  Generator gen(f.seed);
  NoGradGuard no_grad;
  const Tensor images = g(randn({f.count, options.latent}, 0.0, 1.0, DType::f32, device, &gen));
  const data::ImageGrid grid = data::make_image_grid(images, f.columns);
  data::write_png(f.out, grid.pixels.data(), grid.height, grid.width, grid.channels);
  std::printf("wrote %s: %lld samples of %s (step %lld), %lldx%lld pixels\n", f.out.c_str(),
              static_cast<long long>(f.count), dir.c_str(), static_cast<long long>(ckpt.step),
              static_cast<long long>(grid.width), static_cast<long long>(grid.height));
}

}  // namespace

TESSERA_COMMAND(sample, "Write a PNG grid of images from a GAN checkpoint's generator", [](CLI::App& app) {
  auto f = std::make_shared<SampleFlags>();
  app.add_option("--checkpoint", f->checkpoint, "Run directory (its latest checkpoints/step_<N>/) or a step_<N> directory")
      ->required();
  app.add_option("--out", f->out, "PNG file to write")->required();
  app.add_option("--seed", f->seed, "Seed of the noise")->capture_default_str();
  app.add_option("--count", f->count, "Number of images")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--columns", f->columns, "Images per row")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--device", f->device, "cpu, cuda or cuda:N")->capture_default_str();
  app.callback([f] { run_sample(*f); });
});
