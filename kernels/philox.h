// Philox-4x32-10 counter-based random numbers, identical on host and device.
//
// defines: tessera::kernels::philox4x32 (one 128-bit block for a key and counter),
//          uniform_from_bits, random_uniform_at, random_normal_at
//
// A generator is (seed, offset). Element i of a random tensor drawn at `offset` comes from
// block `offset + i / 4`, lane `i % 4`, so any element can be computed independently, by any
// thread, on any device: CPU and CUDA give the same numbers for the same seed. Uniforms use
// the top 24 bits of a lane (exact in float, in [0, 1)). Normals use Box-Muller on lane pairs
// (0,1) and (2,3), computed in double so host and device agree to the last float bit except in
// rare double-rounding ties.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define TESSERA_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define TESSERA_HOST_DEVICE inline
#endif

namespace tessera::kernels {

struct PhiloxBlock {
  uint32_t x[4];
};

TESSERA_HOST_DEVICE void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t product = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(product >> 32);
  lo = static_cast<uint32_t>(product);
}

TESSERA_HOST_DEVICE PhiloxBlock philox4x32(uint64_t seed, uint64_t counter) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, c0, hi0, lo0);
    philox_mulhilo(0xCD9E8D57u, c2, hi1, lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return PhiloxBlock{{c0, c1, c2, c3}};
}

// In [0, 1), a multiple of 2^-24.
TESSERA_HOST_DEVICE float uniform_from_bits(uint32_t bits) { return static_cast<float>(bits >> 8) * 0x1p-24f; }

TESSERA_HOST_DEVICE float random_uniform_at(uint64_t seed, uint64_t offset, uint64_t i) {
  const PhiloxBlock b = philox4x32(seed, offset + i / 4);
  return uniform_from_bits(b.x[i % 4]);
}

TESSERA_HOST_DEVICE float random_normal_at(uint64_t seed, uint64_t offset, uint64_t i) {
  const PhiloxBlock b = philox4x32(seed, offset + i / 4);
  const int lane = static_cast<int>(i % 4);
  const int pair = lane & 2;
  // u1 in (0, 1] so the log is finite.
  const double u1 = (static_cast<double>(b.x[pair] >> 8) + 1.0) * 0x1p-24;
  const double u2 = static_cast<double>(b.x[pair + 1] >> 8) * 0x1p-24;
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 6.283185307179586 * u2;
  return static_cast<float>((lane & 1) ? radius * std::sin(angle) : radius * std::cos(angle));
}

}  // namespace tessera::kernels
