// Differentiable elementwise ops: arithmetic with broadcasting, math functions, activations.
//
// defines: add, sub, mul, div, maximum, minimum, neg, exp, log, sqrt, rsqrt, abs, square,
//          reciprocal, pow, clamp, sign, tanh, sigmoid, relu, leaky_relu, gelu, silu,
//          activation_grad, sum_to, operators + - * / (tensor-tensor and tensor-scalar)
//
// Binary ops broadcast like NumPy and need operands of one dtype and device. Backward
// formulas are ops too, so all of these support second derivatives; activations use one fused
// kernel for f'(x) (activation_grad) and one for f''(x).
#pragma once

#include "framework/core/tensor.h"
#include "kernels/elementwise.h"

namespace tessera {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);

// y = scale * x + shift
Tensor affine(const Tensor& x, double scale, double shift);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor square(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor sign(const Tensor& x);  // no gradient (zero almost everywhere)
Tensor pow(const Tensor& x, double exponent);
Tensor clamp(const Tensor& x, double low, double high);

Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor gelu(const Tensor& x);  // tanh approximation
Tensor silu(const Tensor& x);
// g * f'(x) for activation `op` (differentiable once more in both g and x).
Tensor activation_grad(kernels::UnaryOp op, const Tensor& g, const Tensor& x, double param = 0.0);

// Sums `t` down to `shape` (undoes broadcasting); returns t if the shapes match.
Tensor sum_to(const Tensor& t, const Shape& shape);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(const Tensor& a, double s);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(const Tensor& a, double s);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(const Tensor& a, double s);
Tensor operator/(double s, const Tensor& a);

namespace ops {
// Raw kernels without autograd, used by ops and optimizers.
Tensor unary_raw(kernels::UnaryOp op, const Tensor& x, kernels::UnaryParams params = {});
Tensor binary_raw(kernels::BinaryOp op, const Tensor& a, const Tensor& b, const char* name);
// a = a op b in place (a contiguous; b broadcast to a's shape). No autograd.
void binary_inplace(kernels::BinaryOp op, const Tensor& a, const Tensor& b, const char* name);
}  // namespace ops

}  // namespace tessera
