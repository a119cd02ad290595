// Element types of tensors.
//
// defines: tessera::DType, dtype_size, dtype_name, parse_dtype, is_floating_point,
//          dtype_switch (calls a lambda with a typed null pointer for the C++ type)
//
// Dependency-free so the kernels layer can include it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "framework/core/error.h"
#include "framework/core/half.h"

namespace tessera {

enum class DType : uint8_t { f64, f32, bf16, f16, i64, i32, u8 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // "f32", "bf16", ...
DType parse_dtype(std::string_view name);  // accepts our names and torch's ("float32", "bfloat16", ...)
inline bool is_floating_point(DType d) {
  return d == DType::f64 || d == DType::f32 || d == DType::bf16 || d == DType::f16;
}

// Calls fn(static_cast<T*>(nullptr)) with T the C++ type of `dtype`.
template <typename Fn>
decltype(auto) dtype_switch(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::f64: return fn(static_cast<double*>(nullptr));
    case DType::f32: return fn(static_cast<float*>(nullptr));
    case DType::bf16: return fn(static_cast<bf16*>(nullptr));
    case DType::f16: return fn(static_cast<f16*>(nullptr));
    case DType::i64: return fn(static_cast<int64_t*>(nullptr));
    case DType::i32: return fn(static_cast<int32_t*>(nullptr));
    case DType::u8: return fn(static_cast<uint8_t*>(nullptr));
  }
  TESSERA_ASSERT(false, "bad dtype");
}

// Same, for the four floating types only; other dtypes are an error naming `op`.
template <typename Fn>
decltype(auto) float_dtype_switch(DType dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case DType::f64: return fn(static_cast<double*>(nullptr));
    case DType::f32: return fn(static_cast<float*>(nullptr));
    case DType::bf16: return fn(static_cast<bf16*>(nullptr));
    case DType::f16: return fn(static_cast<f16*>(nullptr));
    default: break;
  }
  detail::throw_error(detail::cat(op, ": expected a floating-point tensor, got ", dtype_name(dtype)));
}

}  // namespace tessera
