// Helpers shared by the CPU kernels: value conversion between element types and the
// parallel-loop threshold.
//
// defines: tessera::kernels::cpu::cast_value, load_float, store_float, kParallelGrain,
//          parallel_for, AccType
#pragma once

#include <omp.h>

#include <cstdint>
#include <type_traits>

#include "framework/core/half.h"

namespace tessera::kernels::cpu {

// Below this many elements a loop runs on one thread: thread start-up costs more.
constexpr int64_t kParallelGrain = 1 << 15;

template <typename T>
constexpr bool is_half_v = std::is_same_v<T, bf16> || std::is_same_v<T, f16>;

// Accumulation type: double for f64, float for everything else.
template <typename T>
using AccType = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
inline AccType<T> load(const T& v) {
  if constexpr (is_half_v<T>) {
    return to_float(v);
  } else {
    return static_cast<AccType<T>>(v);
  }
}

template <typename T, typename V>
inline T store(V v) {
  if constexpr (is_half_v<T>) {
    return from_float<T>(static_cast<float>(v));
  } else {
    return static_cast<T>(v);
  }
}

template <typename To, typename From>
inline To cast_value(const From& v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (is_half_v<From>) {
    return store<To>(to_float(v));
  } else if constexpr (is_half_v<To>) {
    return from_float<To>(static_cast<float>(v));
  } else {
    return static_cast<To>(v);
  }
}

// Runs body(begin, end) over [0, n) split into contiguous chunks, one per thread, in parallel
// when n is large. Chunks are fixed by n and the thread count, never by timing.
template <typename Body>
inline void parallel_for(int64_t n, Body&& body, int64_t grain = kParallelGrain) {
  if (n <= grain || omp_get_max_threads() == 1) {
    body(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads();
    const int64_t t = omp_get_thread_num();
    const int64_t chunk = (n + threads - 1) / threads;
    const int64_t begin = t * chunk;
    const int64_t end = begin + chunk < n ? begin + chunk : n;
    if (begin < end) body(begin, end);
  }
}

}  // namespace tessera::kernels::cpu
