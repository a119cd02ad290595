// PyTorch parity, C++ side: DCGAN generator and discriminator, and a WGAN-GP critic step.
//
// Usage: dcgan_parity OUT_DIR. Builds (as nn::Sequential, numbered like torch.nn.Sequential)
//   G: z [B, 64, 1, 1] -> ConvT(64->32, k7) -> BN -> ReLU -> ConvT(32->16, k4 s2 p1) -> BN -> ReLU
//      -> ConvT(16->1, k4 s2 p1) -> Tanh                                      = [B, 1, 28, 28]
//   D: Conv(1->16, k4 s2 p1) -> LeakyReLU(0.2) -> Conv(16->32, k4 s2 p1, no bias) -> BN
//      -> LeakyReLU(0.2) -> Conv(32->1, k7) -> Flatten                       = [B, 1]
//   C: Conv(1->8, k4 s2 p1) -> LeakyReLU(0.2) -> Conv(8->16, k4 s2 p1) -> LeakyReLU(0.2)
//      -> Flatten -> Linear(784->1)                                          (WGAN-GP critic)
// writes the initial weights (BN affine parameters randomised) and the inputs to
// OUT_DIR/init.safetensors, then in training mode: fake = G(z), the DCGAN loss
// bce(D(real), 1) + bce(D(fake), 0) and the gradients of every G and D parameter, the BN
// running statistics afterwards, and G's output in eval mode; and for the critic: the
// gradient penalty mean((|grad_x C(x_hat)| - 1)^2) at x_hat = e*real + (1-e)*fake (gradient
// taken with create_graph), its gradients with respect to C's parameters (second
// derivatives through conv2d, leaky_relu and linear), and the gradients of the critic loss
// mean(C(fake)) - mean(C(real)) + 10 * penalty. All go to OUT_DIR/result.safetensors;
// dcgan_parity.py repeats everything in torch and compares. f32 on the CPU.
#include <cstdio>
#include <exception>
#include <string>

#include "framework/nn/layers.h"
#include "framework/ops/ops.h"
#include "framework/train/safetensors.h"

namespace {

using namespace tessera;

constexpr int64_t kBatch = 6, kLatent = 64;

std::shared_ptr<nn::Sequential> generator(Generator* gen) {
  auto g = std::make_shared<nn::Sequential>();
  g->add(std::make_shared<nn::ConvTranspose2d>(kLatent, 32, nn::ConvTranspose2dSettings{.kernel = 7, .bias = false}, gen));
  g->add(std::make_shared<nn::BatchNorm2d>(32));
  g->add(std::make_shared<nn::Activation>("relu"));
  g->add(std::make_shared<nn::ConvTranspose2d>(
      32, 16, nn::ConvTranspose2dSettings{.kernel = 4, .stride = 2, .padding = 1, .bias = false}, gen));
  g->add(std::make_shared<nn::BatchNorm2d>(16));
  g->add(std::make_shared<nn::Activation>("relu"));
  g->add(std::make_shared<nn::ConvTranspose2d>(16, 1, nn::ConvTranspose2dSettings{.kernel = 4, .stride = 2, .padding = 1},
                                               gen));
  g->add(std::make_shared<nn::Activation>("tanh"));
  return g;
}

std::shared_ptr<nn::Sequential> discriminator(Generator* gen) {
  auto d = std::make_shared<nn::Sequential>();
  d->add(std::make_shared<nn::Conv2d>(1, 16, nn::Conv2dSettings{.kernel = 4, .stride = 2, .padding = 1}, gen));
  d->add(std::make_shared<nn::Activation>("leaky_relu", 0.2));
  d->add(std::make_shared<nn::Conv2d>(16, 32, nn::Conv2dSettings{.kernel = 4, .stride = 2, .padding = 1, .bias = false},
                                      gen));
  d->add(std::make_shared<nn::BatchNorm2d>(32));
  d->add(std::make_shared<nn::Activation>("leaky_relu", 0.2));
  d->add(std::make_shared<nn::Conv2d>(32, 1, nn::Conv2dSettings{.kernel = 7}, gen));
  d->add(std::make_shared<nn::Flatten>());
  return d;
}

std::shared_ptr<nn::Sequential> critic(Generator* gen) {
  auto c = std::make_shared<nn::Sequential>();
  c->add(std::make_shared<nn::Conv2d>(1, 8, nn::Conv2dSettings{.kernel = 4, .stride = 2, .padding = 1}, gen));
  c->add(std::make_shared<nn::Activation>("leaky_relu", 0.2));
  c->add(std::make_shared<nn::Conv2d>(8, 16, nn::Conv2dSettings{.kernel = 4, .stride = 2, .padding = 1}, gen));
  c->add(std::make_shared<nn::Activation>("leaky_relu", 0.2));
  c->add(std::make_shared<nn::Flatten>());
  c->add(std::make_shared<nn::Linear>(16 * 7 * 7, 1, true, gen));
  return c;
}

// Batch-norm weights around 1 and biases around 0, so their gradients matter.
void randomise_batch_norm(nn::Module& m, Generator* gen) {
  NoGradGuard no_grad;
  for (auto& [name, p] : m.named_parameters()) {
    const auto& children = m.named_children();
    const std::string index = name.substr(0, name.find('.'));
    for (const auto& [child_name, child] : children)
      if (child_name == index && dynamic_cast<nn::BatchNorm2d*>(child.get()) != nullptr)
        copy_into(p, randn(p.shape(), name.ends_with("weight") ? 1.0 : 0.0, 0.2, DType::f32, Device::cpu(), gen));
  }
}

void add_all(nn::StateDict& out, const std::string& prefix, const nn::StateDict& state) {
  for (const auto& [name, t] : state) out.emplace_back(prefix + name, t.clone_data());
}

void add_grads(nn::StateDict& out, const std::string& prefix, const nn::Module& m) {
  for (const auto& [name, p] : m.named_parameters()) out.emplace_back(prefix + name, p.grad().clone_data());
}

void run(const std::string& dir) {
  Generator gen(2024);
  auto g = generator(&gen);
  auto d = discriminator(&gen);
  auto c = critic(&gen);
  randomise_batch_norm(*g, &gen);
  randomise_batch_norm(*d, &gen);
  const Tensor z = randn({kBatch, kLatent, 1, 1}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);
  const Tensor real = rand({kBatch, 1, 28, 28}, -1.0, 1.0, DType::f32, Device::cpu(), &gen);
  const Tensor mix = rand({kBatch, 1, 1, 1}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);

  nn::StateDict init;
  add_all(init, "G.", g->state_dict());
  add_all(init, "D.", d->state_dict());
  add_all(init, "C.", c->state_dict());
  init.emplace_back("z", z);
  init.emplace_back("real", real);
  init.emplace_back("mix", mix);
  train::save_safetensors(dir + "/init.safetensors", init);

  nn::StateDict result;
  // DCGAN: one loss through both networks.
  const Tensor fake = (*g)(z);
  const Tensor d_real = (*d)(real), d_fake = (*d)(fake);
  const Tensor loss = add(binary_cross_entropy_with_logits(d_real, Tensor::ones(d_real.shape())),
                          binary_cross_entropy_with_logits(d_fake, Tensor::zeros(d_fake.shape())));
  loss.backward();
  result.emplace_back("fake", fake.detach().clone_data());
  result.emplace_back("d_real", d_real.detach().clone_data());
  result.emplace_back("d_fake", d_fake.detach().clone_data());
  result.emplace_back("loss", loss.detach().clone_data());
  add_grads(result, "grad.G.", *g);
  add_grads(result, "grad.D.", *d);
  add_all(result, "after.G.", g->state_dict());
  add_all(result, "after.D.", d->state_dict());
  g->eval();
  {
    NoGradGuard no_grad;
    result.emplace_back("fake_eval", (*g)(z).clone_data());
  }

  // WGAN-GP critic step.
  const Tensor fake_detached = fake.detach();
  Tensor x_hat = add(mul(mix, real), mul(affine(mix, -1.0, 1.0), fake_detached)).detach();
  x_hat.set_requires_grad(true);
  const Tensor score = (*c)(x_hat);
  const Tensor dx = autograd::grad({sum(score)}, {x_hat}, {}, std::nullopt, /*create_graph=*/true)[0];
  const Tensor norms = sqrt(sum(square(reshape(dx, {kBatch, -1})), {1}));
  const Tensor penalty = mean(square(affine(norms, 1.0, -1.0)));
  const std::vector<Tensor> params = c->parameters();
  // The last bias does not reach the penalty (its gradient with respect to x_hat ignores it).
  const std::vector<Tensor> penalty_grads =
      autograd::grad({penalty}, params, {}, /*retain_graph=*/true, false, /*allow_unused=*/true);
  const Tensor critic_loss = add(sub(mean((*c)(fake_detached)), mean((*c)(real))), affine(penalty, 10.0, 0.0));
  critic_loss.backward();
  result.emplace_back("gp", penalty.detach().clone_data());
  result.emplace_back("critic_loss", critic_loss.detach().clone_data());
  const auto named = c->named_parameters();
  for (size_t i = 0; i < named.size(); ++i) {
    const Tensor& gp_grad = penalty_grads[i];
    result.emplace_back("gp_grad.C." + named[i].first,
                        gp_grad.defined() ? gp_grad.clone_data() : Tensor::zeros(named[i].second.shape()));
    result.emplace_back("grad.C." + named[i].first, named[i].second.grad().clone_data());
  }
  train::save_safetensors(dir + "/result.safetensors", result);
  std::printf("dcgan_parity: DCGAN loss %.6f, gradient penalty %.6f, critic loss %.6f; files in %s\n", loss.item(),
              penalty.item(), critic_loss.item(), dir.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  try {
    run(argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dcgan_parity: %s\n", e.what());
    return 1;
  }
  return 0;
}
