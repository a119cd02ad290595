// Helpers shared by the CUDA kernels: element types, conversions, launch shapes.
//
// defines: tessera::kernels::cuda::DeviceType<T> (host type -> CUDA type), load, store,
//          cast_value, AccType, blocks_for, kThreads, stream_of, cuda_dtype_switch,
//          cuda_float_dtype_switch
//
// Host-side code passes bf16/f16 buffers typed as tessera::bf16 / tessera::f16; kernels see
// them as __nv_bfloat16 / __half (same bits). Arithmetic accumulates in float (double for f64).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "framework/core/cuda_check.h"
#include "framework/core/dtype.h"

namespace tessera::kernels::cuda {

constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t n, int threads = kThreads, int64_t max_blocks = 1 << 16) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks > max_blocks) blocks = max_blocks;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

inline cudaStream_t stream_of(void* stream) { return static_cast<cudaStream_t>(stream); }

template <typename T>
constexpr bool is_half_v = std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>;

template <typename T>
using AccType = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
__device__ __forceinline__ AccType<T> load(const T& v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __bfloat162float(v);
  } else if constexpr (std::is_same_v<T, __half>) {
    return __half2float(v);
  } else {
    return static_cast<AccType<T>>(v);
  }
}

template <typename T, typename V>
__device__ __forceinline__ T store(V v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __float2bfloat16_rn(static_cast<float>(v));
  } else if constexpr (std::is_same_v<T, __half>) {
    return __float2half_rn(static_cast<float>(v));
  } else {
    return static_cast<T>(v);
  }
}

template <typename To, typename From>
__device__ __forceinline__ To cast_value(const From& v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (is_half_v<From>) {
    return store<To>(load(v));
  } else {
    return store<To>(v);
  }
}

// Calls fn(static_cast<T*>(nullptr)) with T the CUDA type for `dtype`.
template <typename Fn>
decltype(auto) cuda_dtype_switch(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::f64: return fn(static_cast<double*>(nullptr));
    case DType::f32: return fn(static_cast<float*>(nullptr));
    case DType::bf16: return fn(static_cast<__nv_bfloat16*>(nullptr));
    case DType::f16: return fn(static_cast<__half*>(nullptr));
    case DType::i64: return fn(static_cast<int64_t*>(nullptr));
    case DType::i32: return fn(static_cast<int32_t*>(nullptr));
    case DType::u8: return fn(static_cast<uint8_t*>(nullptr));
  }
  TESSERA_ASSERT(false, "bad dtype");
}

template <typename Fn>
decltype(auto) cuda_float_dtype_switch(DType dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case DType::f64: return fn(static_cast<double*>(nullptr));
    case DType::f32: return fn(static_cast<float*>(nullptr));
    case DType::bf16: return fn(static_cast<__nv_bfloat16*>(nullptr));
    case DType::f16: return fn(static_cast<__half*>(nullptr));
    default: break;
  }
  ::tessera::detail::throw_error(::tessera::detail::cat(op, ": expected a floating-point tensor, got ",
                                                        dtype_name(dtype)));
}

}  // namespace tessera::kernels::cuda

namespace tessera::kernels::cuda {

// N elements of T moved as one 16-byte (or smaller) access.
template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

// Elements per 16-byte access.
template <typename T>
constexpr int vec_width() {
  return 16 / sizeof(T) > 0 ? static_cast<int>(16 / sizeof(T)) : 1;
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Grid for a memory-bound kernel: enough blocks to fill the device a few times over.
inline unsigned memory_bound_blocks(int64_t work_items, int threads = kThreads) {
  static int sm_count = [] {
    int device = 0, count = 0;
    cudaGetDevice(&device);
    cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device);
    return count > 0 ? count : 80;
  }();
  const int64_t needed = (work_items + threads - 1) / threads;
  const int64_t cap = static_cast<int64_t>(sm_count) * 8;
  return static_cast<unsigned>(needed < 1 ? 1 : (needed < cap ? needed : cap));
}

}  // namespace tessera::kernels::cuda

namespace tessera::kernels::cuda {
inline int current_device() {
  int device = 0;
  TESSERA_CUDA_CHECK(cudaGetDevice(&device));
  return device;
}
}  // namespace tessera::kernels::cuda
