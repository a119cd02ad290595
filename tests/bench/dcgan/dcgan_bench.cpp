// dcgan_bench: images/s of one DCGAN training step (discriminator + generator) at batch 512 on
// 28x28 images, exactly the gan job's step for gan.loss = "bce" (gan_job.cpp): fake = G(z);
// D step on real and fake.detach() with BCE, Adam; G step through D with D's parameters frozen,
// BCE against ones, Adam. Networks: framework/models/gan.h at latent 100, widths 64 (G
// 100 -> 128x7x7 -> 64x14x14 -> 1x28x28, D 1 -> 64 -> 128 -> 1, batch norm in both). f32
// compute: the gan job has no bf16 path yet. Prints one line:
//
//   RESULT impl=tessera dtype=f32 batch=512 step_ms=12.34 images_per_s=41493 device=cuda:0
//
// The real batch and noise are generated on the device beforehand (4 sets, rotated); the time
// is the wall time of --iters steps after --warmup steps, with one read-back (host
// synchronisation) before and after the timed loop and none inside it.
//
//   dcgan_bench [--batch 512] [--iters 50] [--warmup 10] [--device cuda]
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "framework/models/gan.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"

namespace {

using namespace tessera;

struct Flags {
  int64_t batch = 512;
  int iters = 50, warmup = 10;
  std::string device = "cuda";
};

Flags parse(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
      return argv[++i];
    };
    if (a == "--batch") f.batch = std::stoll(value());
    else if (a == "--iters") f.iters = std::stoi(value());
    else if (a == "--warmup") f.warmup = std::stoi(value());
    else if (a == "--device") f.device = value();
    else throw std::runtime_error("unknown flag " + a + " (flags: --batch B --iters N --warmup N --device D)");
  }
  return f;
}

void set_requires_grad(const nn::Module& m, bool on) {
  for (auto [name, p] : m.named_parameters()) p.set_requires_grad(on);
}

int run(const Flags& f) {
  const Device device = Device::parse(f.device);
  require_device(device);
  models::GanOptions o;
  o.latent = 100;
  o.g_width = 64;
  o.d_width = 64;
  manual_seed(0);
  models::DcganGenerator g(o);
  models::DcganCritic d(o);
  g.to(device);
  d.to(device);
  const optim::AdamOptions adam{.lr = 2e-4, .beta1 = 0.5, .beta2 = 0.999};
  optim::Adam opt_g(g.parameters(), adam), opt_d(d.parameters(), adam);
  std::vector<Tensor> reals, noises;
  for (int k = 0; k < 4; ++k) {
    reals.push_back(rand({f.batch, 1, 28, 28}, -1.0, 1.0, DType::f32, device));
    noises.push_back(randn({f.batch, o.latent}, 0.0, 1.0, DType::f32, device));
  }
  const Tensor ones = Tensor::ones({f.batch}, DType::f32, device), zeros = Tensor::zeros({f.batch}, DType::f32, device);
  Tensor loss_d, loss_g;
  auto step = [&](int i) {
    const Tensor fake = g(noises[i % 4]);
    opt_d.zero_grad();
    loss_d = binary_cross_entropy_with_logits(d(reals[i % 4]), ones) +
             binary_cross_entropy_with_logits(d(fake.detach()), zeros);
    loss_d.backward();
    opt_d.step();
    set_requires_grad(d, false);
    opt_g.zero_grad();
    loss_g = binary_cross_entropy_with_logits(d(fake), ones);
    loss_g.backward();
    opt_g.step();
    set_requires_grad(d, true);
  };
  for (int i = 0; i < f.warmup; ++i) step(i);
  const double warm = loss_g.defined() ? loss_g.item() : 0.0;  // synchronises
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < f.iters; ++i) step(f.warmup + i);
  const double last = loss_g.item();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double step_ms = 1e3 * seconds / f.iters;
  std::printf("RESULT impl=tessera dtype=f32 batch=%lld step_ms=%.3f images_per_s=%.0f device=%s loss_g=%.4f->%.4f "
              "loss_d=%.4f\n",
              static_cast<long long>(f.batch), step_ms, static_cast<double>(f.batch) / (step_ms / 1e3),
              device.str().c_str(), warm, last, loss_d.item());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dcgan_bench: %s\n", e.what());
    return 1;
  }
}
