// Elementwise kernels: unary maps, broadcasting binary maps, activation derivatives.
//
// defines: UnaryOp, BinaryOp, UnaryParams, unary_cpu/cuda, binary_cpu/cuda,
//          unary_grad_cpu/cuda
//
// unary:      y[i] = f(x[i])                          (x, y contiguous, n elements)
// binary:     out[i] = a[la(i)] op b[lb(i)]          (out contiguous with the layouts' shape;
//                                                     broadcast operands carry stride 0)
// unary_grad: out[i] = g[i] * f'(x[i])    (order 1)  — the backward of an activation
//             out[i] = g[i] * f''(x[i])   (order 2)  — the backward of that backward
// The scalar formulas live in kernels/elementwise_math.h, shared by both devices, so CPU and
// CUDA compute the same function. Accumulation is in float (double for f64).
#pragma once

#include <cstdint>

#include "framework/core/dtype.h"
#include "kernels/layout.h"

namespace tessera::kernels {

enum class UnaryOp : uint8_t {
  neg, exp, log, sqrt, rsqrt, abs, sign, square, reciprocal,
  tanh, sigmoid, relu, leaky_relu, gelu, silu,
  clamp,       // params: a = low, b = high
  pow_scalar,  // params: a = exponent
  affine,      // params: y = a * x + b
  step,        // y = x > a ? 1 : 0 (relu mask, clamp mask)
};

enum class BinaryOp : uint8_t { add, sub, mul, div, maximum, minimum, pow };

struct UnaryParams {
  double a = 0.0;
  double b = 0.0;
};

void unary_cpu(UnaryOp op, DType dtype, const void* x, void* y, int64_t n, UnaryParams params);
void binary_cpu(BinaryOp op, DType dtype, const void* a, Layout la, const void* b, Layout lb, void* out);
void unary_grad_cpu(UnaryOp op, int order, DType dtype, const void* g, const void* x, void* out, int64_t n,
                    UnaryParams params);

#ifdef TESSERA_WITH_CUDA
void unary_cuda(UnaryOp op, DType dtype, const void* x, void* y, int64_t n, UnaryParams params, void* stream);
void binary_cuda(BinaryOp op, DType dtype, const void* a, Layout la, const void* b, Layout lb, void* out,
                 void* stream);
void unary_grad_cuda(UnaryOp op, int order, DType dtype, const void* g, const void* x, void* out, int64_t n,
                     UnaryParams params, void* stream);
#endif

}  // namespace tessera::kernels
