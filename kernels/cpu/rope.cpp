// CPU rotary position embedding (kernels/rope.h): the reference for kernels/cuda/rope.cu.
// Rows (one head of one position) are independent; they are split over threads in fixed chunks.
#include "kernels/cpu/common.h"
#include "kernels/rope.h"

namespace tessera::kernels {

void rope_cpu(const RopeArgs& a) {
  float_dtype_switch(a.dtype, "rope", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = cpu::AccType<T>;
    const T* x = static_cast<const T*>(a.x);
    T* out = static_cast<T*>(a.out);
    const int64_t half = a.head_dim / 2;
    const int64_t rows = a.batch * a.seq * a.heads;
    const A sign = a.inverse ? A(-1) : A(1);
    cpu::parallel_for(rows, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t head = r % a.heads, t = (r / a.heads) % a.seq, b = r / (a.heads * a.seq);
        const T* xr = x + b * a.x_batch_stride + t * a.x_seq_stride + head * a.x_head_stride;
        T* yr = out + r * a.head_dim;
        const float* cr = a.cos + t * a.table_stride;
        const float* sr = a.sin + t * a.table_stride;
        for (int64_t i = 0; i < half; ++i) {
          const A x1 = cpu::load(xr[i]), x2 = cpu::load(xr[i + half]);
          const A c = static_cast<A>(cr[i]), s = sign * static_cast<A>(sr[i]);
          yr[i] = cpu::store<T>(x1 * c - x2 * s);
          yr[i + half] = cpu::store<T>(x2 * c + x1 * s);
        }
      }
    }, cpu::kParallelGrain / (a.head_dim > 0 ? a.head_dim : 1));
  });
}

}  // namespace tessera::kernels
