// CPU cross-entropy (kernels/loss.h), the reference for kernels/cuda/loss.cu.
//
// One thread per row (rows are independent) and a fixed-order blocked sum for the reduction,
// so results do not depend on the thread count. Targets are checked before any work, so a bad
// target is reported with its value, its row and the class count.
#include <algorithm>
#include <cmath>
#include <limits>

#include "framework/core/error.h"
#include "kernels/cpu/common.h"
#include "kernels/loss.h"

namespace tessera::kernels {
namespace {

template <typename Fn>
void index_dtype_switch(DType index_dtype, Fn&& fn) {
  switch (index_dtype) {
    case DType::i64: return fn(static_cast<int64_t*>(nullptr));
    case DType::i32: return fn(static_cast<int32_t*>(nullptr));
    default: break;
  }
  detail::throw_error(detail::cat("cross_entropy: targets must be class indices of dtype i64 or i32, got ",
                                  dtype_name(index_dtype)));
}

template <typename I>
void check_targets(const I* targets, int64_t rows, int64_t classes, int64_t ignore_index) {
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = static_cast<int64_t>(targets[r]);
    TESSERA_CHECK(t == ignore_index || (t >= 0 && t < classes), "cross_entropy: target ", t, " (at position ", r,
                  ") is out of range for ", classes, " classes; targets must lie in [0, ", classes,
                  ") or equal ignore_index (", ignore_index, ")");
  }
}

template <typename T, typename I>
void forward_typed(const T* x, const I* targets, int64_t rows, int64_t classes, int64_t ignore_index, double smoothing,
                   cpu::AccType<T>* row_loss, cpu::AccType<T>* lse_out) {
  using A = cpu::AccType<T>;
  check_targets(targets, rows, classes, ignore_index);
  const A eps = static_cast<A>(smoothing);
  cpu::parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * classes;
      A max = -std::numeric_limits<A>::infinity();
      for (int64_t c = 0; c < classes; ++c) {
        const A v = cpu::load(xr[c]);
        max = std::isnan(v) || v > max ? v : max;
      }
      A sum = 0, sum_x = 0;
      for (int64_t c = 0; c < classes; ++c) {
        const A v = cpu::load(xr[c]);
        sum += std::exp(v - max);
        sum_x += v;
      }
      const A lse = max + std::log(sum);
      lse_out[r] = lse;
      const int64_t t = static_cast<int64_t>(targets[r]);
      row_loss[r] = t == ignore_index
                        ? A(0)
                        : lse - (A(1) - eps) * cpu::load(xr[t]) - eps * sum_x / static_cast<A>(classes);
    }
  }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(classes, 1)));
}

template <typename T, typename I>
void reduce_typed(const cpu::AccType<T>* row_loss, const I* targets, int64_t rows, int64_t ignore_index, bool mean,
                  T* out, cpu::AccType<T>* inv_count) {
  using A = cpu::AccType<T>;
  constexpr int64_t kBlock = 1024;
  A total = 0, count = 0;
  for (int64_t b = 0; b < rows; b += kBlock) {
    A block_total = 0, block_count = 0;
    for (int64_t r = b; r < std::min(rows, b + kBlock); ++r) {
      block_total += row_loss[r];
      block_count += static_cast<int64_t>(targets[r]) == ignore_index ? A(0) : A(1);
    }
    total += block_total;
    count += block_count;
  }
  const A scale = mean ? A(1) / std::max(count, A(1)) : A(1);
  out[0] = cpu::store<T>(total * scale);
  inv_count[0] = scale;
}

template <typename T, typename I>
void backward_typed(const T* x, const cpu::AccType<T>* lse, const I* targets, const T* grad, bool grad_per_row,
                    const cpu::AccType<T>* inv_count, int64_t rows, int64_t classes, int64_t ignore_index,
                    double smoothing, T* dx) {
  using A = cpu::AccType<T>;
  const A eps = static_cast<A>(smoothing);
  const A uniform = eps / static_cast<A>(classes);
  const A scale = inv_count ? inv_count[0] : A(1);
  cpu::parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * classes;
      T* dxr = dx + r * classes;
      const int64_t t = static_cast<int64_t>(targets[r]);
      if (t == ignore_index) {
        for (int64_t c = 0; c < classes; ++c) dxr[c] = cpu::store<T>(A(0));
        continue;
      }
      const A g = cpu::load(grad[grad_per_row ? r : 0]) * scale;
      for (int64_t c = 0; c < classes; ++c) {
        const A q = (c == t ? A(1) - eps : A(0)) + uniform;
        dxr[c] = cpu::store<T>(g * (std::exp(cpu::load(xr[c]) - lse[r]) - q));
      }
    }
  }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(classes, 1)));
}

template <typename T, typename I>
void target_dist_typed(const I* targets, int64_t rows, int64_t classes, int64_t ignore_index, double smoothing,
                       T* dist, T* valid) {
  using A = cpu::AccType<T>;
  check_targets(targets, rows, classes, ignore_index);
  const A eps = static_cast<A>(smoothing);
  const A uniform = eps / static_cast<A>(classes);
  cpu::parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t t = static_cast<int64_t>(targets[r]);
      const bool ignored = t == ignore_index;
      valid[r] = cpu::store<T>(ignored ? A(0) : A(1));
      for (int64_t c = 0; c < classes; ++c)
        dist[r * classes + c] = cpu::store<T>(ignored ? A(0) : (c == t ? A(1) - eps : A(0)) + uniform);
    }
  }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(classes, 1)));
}

}  // namespace

void cross_entropy_forward_cpu(DType dtype, DType index_dtype, const void* logits, const void* targets, int64_t rows,
                               int64_t classes, int64_t ignore_index, double smoothing, void* row_loss, void* lse) {
  if (rows == 0) return;
  float_dtype_switch(dtype, "cross_entropy", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = cpu::AccType<T>;
    index_dtype_switch(index_dtype, [&](auto* index_tag) {
      using I = std::remove_pointer_t<decltype(index_tag)>;
      forward_typed<T, I>(static_cast<const T*>(logits), static_cast<const I*>(targets), rows, classes, ignore_index,
                          smoothing, static_cast<A*>(row_loss), static_cast<A*>(lse));
    });
  });
}

void cross_entropy_reduce_cpu(DType dtype, DType index_dtype, const void* row_loss, const void* targets, int64_t rows,
                              int64_t ignore_index, bool mean, void* out, void* inv_count) {
  float_dtype_switch(dtype, "cross_entropy", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = cpu::AccType<T>;
    index_dtype_switch(index_dtype, [&](auto* index_tag) {
      using I = std::remove_pointer_t<decltype(index_tag)>;
      reduce_typed<T, I>(static_cast<const A*>(row_loss), static_cast<const I*>(targets), rows, ignore_index, mean,
                         static_cast<T*>(out), static_cast<A*>(inv_count));
    });
  });
}

void cross_entropy_backward_cpu(DType dtype, DType index_dtype, const void* logits, const void* lse,
                                const void* targets, const void* grad, bool grad_per_row, const void* inv_count,
                                int64_t rows, int64_t classes, int64_t ignore_index, double smoothing, void* dlogits) {
  if (rows == 0) return;
  float_dtype_switch(dtype, "cross_entropy backward", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = cpu::AccType<T>;
    index_dtype_switch(index_dtype, [&](auto* index_tag) {
      using I = std::remove_pointer_t<decltype(index_tag)>;
      backward_typed<T, I>(static_cast<const T*>(logits), static_cast<const A*>(lse), static_cast<const I*>(targets),
                           static_cast<const T*>(grad), grad_per_row, static_cast<const A*>(inv_count), rows, classes,
                           ignore_index, smoothing, static_cast<T*>(dlogits));
    });
  });
}

void cross_entropy_target_dist_cpu(DType dtype, DType index_dtype, const void* targets, int64_t rows, int64_t classes,
                                   int64_t ignore_index, double smoothing, void* dist, void* valid) {
  if (rows == 0) return;
  float_dtype_switch(dtype, "cross_entropy", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    index_dtype_switch(index_dtype, [&](auto* index_tag) {
      using I = std::remove_pointer_t<decltype(index_tag)>;
      target_dist_typed<T, I>(static_cast<const I*>(targets), rows, classes, ignore_index, smoothing,
                              static_cast<T*>(dist), static_cast<T*>(valid));
    });
  });
}

}  // namespace tessera::kernels
