// Host-side 16-bit floating point types: `bf16` (bfloat16) and `f16` (IEEE binary16).
//
// defines: tessera::bf16, tessera::f16, to_float, from_float<T>
//
// Both are 2-byte structs with the same bit layout as CUDA's __nv_bfloat16 and __half, so a
// buffer written by a CUDA kernel can be read on the host and vice versa. Conversions from
// float round to nearest even, NaN stays NaN; arithmetic happens in float (CPU kernels convert
// on load and store). Dependency-free so the kernels layer can include it.
#pragma once

#include <cstdint>
#include <cstring>

namespace tessera {

struct bf16 {
  uint16_t bits = 0;
};

struct f16 {
  uint16_t bits = 0;
};

inline float to_float(bf16 v) {
  uint32_t u = static_cast<uint32_t>(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline bf16 bf16_from_float(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x40)};  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return bf16{static_cast<uint16_t>(u >> 16)};
}

inline float to_float(f16 v) {
  const uint32_t sign = static_cast<uint32_t>(v.bits & 0x8000u) << 16;
  uint32_t exponent = (v.bits >> 10) & 0x1fu;
  uint32_t mantissa = v.bits & 0x3ffu;
  uint32_t u;
  if (exponent == 0) {
    if (mantissa == 0) {
      u = sign;
    } else {  // subnormal: renormalise
      exponent = 127 - 15 + 1;
      while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        --exponent;
      }
      mantissa &= 0x3ffu;
      u = sign | (exponent << 23) | (mantissa << 13);
    }
  } else if (exponent == 0x1f) {
    u = sign | 0x7f800000u | (mantissa << 13);
  } else {
    u = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline f16 f16_from_float(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return f16{static_cast<uint16_t>(sign | 0x7e00u)};  // NaN
  if (abs >= 0x477ff000u) return f16{static_cast<uint16_t>(sign | 0x7c00u)};  // overflow -> inf
  if (abs < 0x38800000u) {  // result is subnormal or zero
    if (abs < 0x33000000u) return f16{sign};
    const uint32_t exponent = abs >> 23;
    const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exponent;  // 14..24
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1u))) ++half;
    return f16{static_cast<uint16_t>(sign | half)};
  }
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);  // round to nearest even at bit 13
  return f16{static_cast<uint16_t>(sign | (((rounded >> 13) - ((127 - 15) << 10)) & 0x7fffu))};
}

template <typename T>
inline T from_float(float f);
template <>
inline float from_float<float>(float f) { return f; }
template <>
inline double from_float<double>(float f) { return f; }
template <>
inline bf16 from_float<bf16>(float f) { return bf16_from_float(f); }
template <>
inline f16 from_float<f16>(float f) { return f16_from_float(f); }

inline float to_float(float v) { return v; }
inline double to_float(double v) { return v; }

}  // namespace tessera
