// Random tensors from a counter-based generator (Philox): the same numbers on CPU and CUDA.
//
// defines: tessera::Generator, default_generator, manual_seed, rand, randn, randint, bernoulli
//
// A Generator is a seed and an offset (a count of 128-bit Philox blocks used so far). Drawing
// n values advances the offset by ceil(n / 4), whatever the device, so the stream of random
// tensors depends only on the seed and the sequence of draws. The state (seed, offset) is two
// integers and goes into checkpoints for bitwise resume.
#pragma once

#include <cstdint>

#include "framework/core/tensor.h"

namespace tessera {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }
  // Reserves blocks for n values and returns the offset to draw them at.
  uint64_t take(int64_t n) {
    const uint64_t start = offset_;
    offset_ += (static_cast<uint64_t>(n) + 3) / 4;
    return start;
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

Generator& default_generator();
void manual_seed(uint64_t seed);

// Uniform in [low, high).
Tensor rand(const Shape& shape, double low = 0.0, double high = 1.0, DType dtype = DType::f32,
            Device device = Device::cpu(), Generator* gen = nullptr);
Tensor randn(const Shape& shape, double mean = 0.0, double std = 1.0, DType dtype = DType::f32,
             Device device = Device::cpu(), Generator* gen = nullptr);
// Integers in [low, high).
Tensor randint(const Shape& shape, int64_t low, int64_t high, DType dtype = DType::i64, Device device = Device::cpu(),
               Generator* gen = nullptr);
// 1 with probability p, else 0.
Tensor bernoulli(const Shape& shape, double p, DType dtype = DType::f32, Device device = Device::cpu(),
                 Generator* gen = nullptr);

}  // namespace tessera
