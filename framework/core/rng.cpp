#include "framework/core/rng.h"

#include "framework/core/tensor_layout.h"
#include "kernels/random.h"

namespace tessera {

Generator& default_generator() {
  static Generator gen;
  return gen;
}

void manual_seed(uint64_t seed) { default_generator().set_state(seed, 0); }

namespace {
Tensor random_tensor(kernels::RandomKind kind, const Shape& shape, double a, double b, DType dtype, Device device,
                     Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  Tensor t = Tensor::empty(shape, dtype, device);
  const uint64_t offset = g.take(t.numel());
  if (device.is_cpu()) {
    kernels::random_fill_cpu(kind, dtype, t.data_ptr(), t.numel(), g.seed(), offset, a, b);
  } else {
#ifdef TESSERA_WITH_CUDA
    kernels::random_fill_cuda(kind, dtype, t.data_ptr(), t.numel(), g.seed(), offset, a, b, stream_for(t));
#endif
  }
  return t;
}
}  // namespace

Tensor rand(const Shape& shape, double low, double high, DType dtype, Device device, Generator* gen) {
  return random_tensor(kernels::RandomKind::uniform, shape, low, high, dtype, device, gen);
}

Tensor randn(const Shape& shape, double mean, double std, DType dtype, Device device, Generator* gen) {
  return random_tensor(kernels::RandomKind::normal, shape, mean, std, dtype, device, gen);
}

Tensor randint(const Shape& shape, int64_t low, int64_t high, DType dtype, Device device, Generator* gen) {
  TESSERA_CHECK(high > low, "randint: empty range [", low, ", ", high, ")");
  return random_tensor(kernels::RandomKind::randint, shape, static_cast<double>(low), static_cast<double>(high),
                       dtype, device, gen);
}

Tensor bernoulli(const Shape& shape, double p, DType dtype, Device device, Generator* gen) {
  TESSERA_CHECK(p >= 0.0 && p <= 1.0, "bernoulli: probability ", p, " is outside [0, 1]");
  return random_tensor(kernels::RandomKind::bernoulli, shape, p, 0.0, dtype, device, gen);
}

}  // namespace tessera
