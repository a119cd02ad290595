// Random fills from Philox (kernels/philox.h): the same values on CPU and CUDA.
//
// defines: RandomKind, random_fill_cpu, random_fill_cuda
//
// uniform: low + (high - low) * u;  normal: mean + std * z;  bernoulli: 1 if u < p else 0;
// randint: low + floor(u * (high - low)) (integer dtypes or float). `a`, `b` are those pairs.
#pragma once

#include <cstdint>

#include "framework/core/dtype.h"

namespace tessera::kernels {

enum class RandomKind : uint8_t { uniform, normal, bernoulli, randint };

void random_fill_cpu(RandomKind kind, DType dtype, void* dst, int64_t n, uint64_t seed, uint64_t offset, double a,
                     double b);
#ifdef TESSERA_WITH_CUDA
void random_fill_cuda(RandomKind kind, DType dtype, void* dst, int64_t n, uint64_t seed, uint64_t offset, double a,
                      double b, void* stream);
#endif

}  // namespace tessera::kernels
