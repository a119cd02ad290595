// CPU flat-buffer packing (kernels/dist.h), the reference for kernels/cuda/dist.cu. Segments
// are handled one after another, each split across threads.
#include <type_traits>

#include "kernels/cpu/common.h"
#include "kernels/dist.h"

namespace tessera::kernels {
namespace {

// Arithmetic type of a conversion: double if either side is f64, else float.
template <typename A, typename B>
using PairAcc = std::conditional_t<std::is_same_v<A, double> || std::is_same_v<B, double>, double, float>;

// dst[i] = convert(src[i] * scale) for i in [0, n); scale 1 is an exact conversion, which keeps
// integer buffers (packed by broadcast_parameters) intact.
template <typename Src, typename Dst>
void convert_range(const Src* src, Dst* dst, int64_t n, double scale) {
  using A = PairAcc<Src, Dst>;
  if (scale == 1.0) {
    cpu::parallel_for(n, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) dst[i] = cpu::cast_value<Dst>(src[i]);
    });
    return;
  }
  const A s = static_cast<A>(scale);
  cpu::parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) dst[i] = cpu::store<Dst>(static_cast<A>(cpu::load(src[i])) * s);
  });
}

template <typename Dst>
void zero_range(Dst* dst, int64_t n) {
  cpu::parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) dst[i] = cpu::store<Dst>(0.0f);
  });
}

}  // namespace

void pack_flat_cpu(DType tensor_dtype, const FlatSegment* segments, int64_t count, DType flat_dtype, void* flat,
                   double scale) {
  dtype_switch(tensor_dtype, [&](auto* ttag) {
    using T = std::remove_pointer_t<decltype(ttag)>;
    dtype_switch(flat_dtype, [&](auto* ftag) {
      using F = std::remove_pointer_t<decltype(ftag)>;
      F* out = static_cast<F*>(flat);
      for (int64_t s = 0; s < count; ++s) {
        const FlatSegment& seg = segments[s];
        if (seg.tensor == nullptr) {
          zero_range(out + seg.offset, seg.numel);
        } else {
          convert_range(static_cast<const T*>(seg.tensor), out + seg.offset, seg.numel, scale);
        }
      }
    });
  });
}

void unpack_flat_cpu(DType flat_dtype, const void* flat, DType tensor_dtype, const FlatSegment* segments,
                     int64_t count, double scale) {
  dtype_switch(tensor_dtype, [&](auto* ttag) {
    using T = std::remove_pointer_t<decltype(ttag)>;
    dtype_switch(flat_dtype, [&](auto* ftag) {
      using F = std::remove_pointer_t<decltype(ftag)>;
      const F* in = static_cast<const F*>(flat);
      for (int64_t s = 0; s < count; ++s) {
        const FlatSegment& seg = segments[s];
        if (seg.tensor != nullptr) convert_range(in + seg.offset, static_cast<T*>(seg.tensor), seg.numel, scale);
      }
    });
  });
}

}  // namespace tessera::kernels
