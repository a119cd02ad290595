// CPU softmax and log-softmax (kernels/softmax.h), the reference for kernels/cuda/softmax.cu.
//
// Each (outer, inner) slice is handled by one thread in a fixed order, so results do not
// depend on the thread count. For inner > 1 a thread keeps running maxima and sums for a
// whole row of `inner` columns and walks the n axis row by row (contiguous loads).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/common.h"
#include "kernels/softmax.h"

namespace tessera::kernels {
namespace {

template <typename T>
void forward_typed(bool log, const T* x, T* y, int64_t outer, int64_t n, int64_t inner) {
  using A = cpu::AccType<T>;
  const int64_t grain = std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(n * inner, 1));
  cpu::parallel_for(outer, [&](int64_t begin, int64_t end) {
    std::vector<A> max(static_cast<size_t>(inner)), sum(static_cast<size_t>(inner));
    for (int64_t o = begin; o < end; ++o) {
      const T* xo = x + o * n * inner;
      T* yo = y + o * n * inner;
      std::fill(max.begin(), max.end(), -std::numeric_limits<A>::infinity());
      std::fill(sum.begin(), sum.end(), A(0));
      for (int64_t r = 0; r < n; ++r)
        for (int64_t i = 0; i < inner; ++i) {
          const A v = cpu::load(xo[r * inner + i]);
          max[i] = std::isnan(v) || v > max[i] ? v : max[i];
        }
      for (int64_t r = 0; r < n; ++r)
        for (int64_t i = 0; i < inner; ++i) sum[i] += std::exp(cpu::load(xo[r * inner + i]) - max[i]);
      for (int64_t i = 0; i < inner; ++i) sum[i] = log ? max[i] + std::log(sum[i]) : A(1) / sum[i];
      for (int64_t r = 0; r < n; ++r)
        for (int64_t i = 0; i < inner; ++i) {
          const A v = cpu::load(xo[r * inner + i]);
          yo[r * inner + i] = cpu::store<T>(log ? v - sum[i] : std::exp(v - max[i]) * sum[i]);
        }
    }
  }, grain);
}

template <typename T>
void backward_typed(bool log, const T* y, const T* dy, T* dx, int64_t outer, int64_t n, int64_t inner) {
  using A = cpu::AccType<T>;
  const int64_t grain = std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(n * inner, 1));
  cpu::parallel_for(outer, [&](int64_t begin, int64_t end) {
    std::vector<A> dot(static_cast<size_t>(inner));
    for (int64_t o = begin; o < end; ++o) {
      const int64_t base = o * n * inner;
      std::fill(dot.begin(), dot.end(), A(0));
      for (int64_t r = 0; r < n; ++r)
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t at = base + r * inner + i;
          dot[i] += log ? cpu::load(dy[at]) : cpu::load(dy[at]) * cpu::load(y[at]);
        }
      for (int64_t r = 0; r < n; ++r)
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t at = base + r * inner + i;
          const A yv = cpu::load(y[at]), g = cpu::load(dy[at]);
          dx[at] = cpu::store<T>(log ? g - std::exp(yv) * dot[i] : yv * (g - dot[i]));
        }
    }
  }, grain);
}

}  // namespace

void softmax_forward_cpu(DType dtype, bool log, const void* x, void* y, int64_t outer, int64_t n, int64_t inner) {
  if (outer * n * inner == 0) return;
  float_dtype_switch(dtype, log ? "log_softmax" : "softmax", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    forward_typed<T>(log, static_cast<const T*>(x), static_cast<T*>(y), outer, n, inner);
  });
}

void softmax_backward_cpu(DType dtype, bool log, const void* y, const void* dy, void* dx, int64_t outer, int64_t n,
                          int64_t inner) {
  if (outer * n * inner == 0) return;
  float_dtype_switch(dtype, log ? "log_softmax backward" : "softmax backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    backward_typed<T>(log, static_cast<const T*>(y), static_cast<const T*>(dy), static_cast<T*>(dx), outer, n, inner);
  });
}

}  // namespace tessera::kernels
