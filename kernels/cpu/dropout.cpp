// CPU fused dropout (kernels/dropout.h). One Philox block gives the random numbers of four
// consecutive elements, so elements are handled in groups of four.
#include "kernels/cpu/common.h"
#include "kernels/dropout.h"
#include "kernels/philox.h"

namespace tessera::kernels {

void dropout_cpu(DType dtype, const void* x, void* out, int64_t n, float keep_threshold, double scale, uint64_t seed,
                 uint64_t offset) {
  float_dtype_switch(dtype, "dropout", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = cpu::AccType<T>;
    const T* in = static_cast<const T*>(x);
    T* y = static_cast<T*>(out);
    const A s = static_cast<A>(scale);
    const int64_t groups = (n + 3) / 4;
    cpu::parallel_for(groups, [&](int64_t begin, int64_t end) {
      for (int64_t g = begin; g < end; ++g) {
        const PhiloxBlock bits = philox4x32(seed, offset + static_cast<uint64_t>(g));
        for (int lane = 0; lane < 4; ++lane) {
          const int64_t i = 4 * g + lane;
          if (i >= n) break;
          const bool keep = uniform_from_bits(bits.x[lane]) < keep_threshold;
          y[i] = cpu::store<T>(keep ? cpu::load(in[i]) * s : A(0));
        }
      }
    }, cpu::kParallelGrain / 4);
  });
}

}  // namespace tessera::kernels
