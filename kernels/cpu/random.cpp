// CPU random fills (kernels/random.h).
#include <cmath>

#include "kernels/cpu/common.h"
#include "kernels/philox.h"
#include "kernels/random.h"

namespace tessera::kernels {

void random_fill_cpu(RandomKind kind, DType dtype, void* dst, int64_t n, uint64_t seed, uint64_t offset, double a,
                     double b) {
  dtype_switch(dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* out = static_cast<T*>(dst);
    cpu::parallel_for(n, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        double v;
        switch (kind) {
          case RandomKind::uniform: v = a + (b - a) * random_uniform_at(seed, offset, i); break;
          case RandomKind::normal: v = a + b * random_normal_at(seed, offset, i); break;
          case RandomKind::bernoulli: v = random_uniform_at(seed, offset, i) < static_cast<float>(a) ? 1.0 : 0.0; break;
          default: v = a + std::floor(static_cast<double>(random_uniform_at(seed, offset, i)) * (b - a)); break;
        }
        out[i] = cpu::cast_value<T>(v);
      }
    }, 4096);
  });
}

}  // namespace tessera::kernels
