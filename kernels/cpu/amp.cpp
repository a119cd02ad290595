// CPU gradient unscaling with the non-finite check (kernels/amp.h); the reference for
// kernels/cuda/amp.cu.
#include <atomic>
#include <cmath>

#include "kernels/amp.h"
#include "kernels/cpu/common.h"

namespace tessera::kernels {

void unscale_check_cpu(DType dtype, void* const* data, const int64_t* numels, int64_t count, double inv_scale,
                       float* found_inf) {
  float_dtype_switch(dtype, "unscale gradients", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = cpu::AccType<T>;
    const A s = static_cast<A>(inv_scale);
    for (int64_t t = 0; t < count; ++t) {
      T* x = static_cast<T*>(data[t]);
      std::atomic<bool> bad{false};
      // Each thread reports through its own flag; any set flag sets the result.
      cpu::parallel_for(numels[t], [&](int64_t begin, int64_t end) {
        bool local = false;
        for (int64_t i = begin; i < end; ++i) {
          const A v = cpu::load(x[i]) * s;
          local |= !std::isfinite(v);
          x[i] = cpu::store<T>(v);
        }
        if (local) bad.store(true, std::memory_order_relaxed);
      });
      if (bad.load()) *found_inf = 1.0f;
    }
  });
}

}  // namespace tessera::kernels
