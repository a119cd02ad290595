#include "framework/core/dtype.h"

namespace tessera {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f64: case DType::i64: return 8;
    case DType::f32: case DType::i32: return 4;
    case DType::bf16: case DType::f16: return 2;
    case DType::u8: return 1;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f64: return "f64";
    case DType::f32: return "f32";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
    case DType::i64: return "i64";
    case DType::i32: return "i32";
    case DType::u8: return "u8";
  }
  return "?";
}

DType parse_dtype(std::string_view name) {
  if (name == "f64" || name == "float64" || name == "double" || name == "fp64") return DType::f64;
  if (name == "f32" || name == "float32" || name == "float" || name == "fp32") return DType::f32;
  if (name == "bf16" || name == "bfloat16") return DType::bf16;
  if (name == "f16" || name == "float16" || name == "half" || name == "fp16") return DType::f16;
  if (name == "i64" || name == "int64" || name == "long") return DType::i64;
  if (name == "i32" || name == "int32" || name == "int") return DType::i32;
  if (name == "u8" || name == "uint8" || name == "byte") return DType::u8;
  detail::throw_error(detail::cat("unknown dtype '", name, "' (expected f64, f32, bf16, f16, i64, i32 or u8)"));
}

}  // namespace tessera
