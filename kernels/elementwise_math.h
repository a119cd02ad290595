// Scalar formulas of the elementwise kernels, compiled for host and device.
//
// defines: tessera::kernels::unary_value<Op>, unary_derivative<Op>, unary_second_derivative<Op>,
//          binary_value<Op>, with_unary_op, with_binary_op
//
// Each is a template on the op so the kernels' inner loops have no run-time switch.
// GELU is the tanh form: 0.5 x (1 + tanh(k (x + c x^3))), k = sqrt(2/pi), c = 0.044715.
#pragma once

#include <cmath>
#include <type_traits>

#include "kernels/elementwise.h"
#include "kernels/philox.h"  // TESSERA_HOST_DEVICE

namespace tessera::kernels {

template <UnaryOp Op, typename A>
TESSERA_HOST_DEVICE A unary_value(A x, A a, A b) {
  using std::exp; using std::log; using std::sqrt; using std::tanh; using std::fabs; using std::pow;
  if constexpr (Op == UnaryOp::neg) return -x;
  else if constexpr (Op == UnaryOp::exp) return exp(x);
  else if constexpr (Op == UnaryOp::log) return log(x);
  else if constexpr (Op == UnaryOp::sqrt) return sqrt(x);
  else if constexpr (Op == UnaryOp::rsqrt) return A(1) / sqrt(x);
  else if constexpr (Op == UnaryOp::abs) return fabs(x);
  else if constexpr (Op == UnaryOp::sign) return x > A(0) ? A(1) : (x < A(0) ? A(-1) : A(0));
  else if constexpr (Op == UnaryOp::square) return x * x;
  else if constexpr (Op == UnaryOp::reciprocal) return A(1) / x;
  else if constexpr (Op == UnaryOp::tanh) return tanh(x);
  else if constexpr (Op == UnaryOp::sigmoid) return A(1) / (A(1) + exp(-x));
  else if constexpr (Op == UnaryOp::relu) return x > A(0) ? x : A(0);
  else if constexpr (Op == UnaryOp::leaky_relu) return x > A(0) ? x : a * x;
  else if constexpr (Op == UnaryOp::gelu) {
    const A k = A(0.7978845608028654), c = A(0.044715);
    return A(0.5) * x * (A(1) + tanh(k * (x + c * x * x * x)));
  } else if constexpr (Op == UnaryOp::silu) return x / (A(1) + exp(-x));
  else if constexpr (Op == UnaryOp::clamp) return x < a ? a : (x > b ? b : x);
  else if constexpr (Op == UnaryOp::pow_scalar) return pow(x, a);
  else if constexpr (Op == UnaryOp::affine) return a * x + b;
  else return x > a ? A(1) : A(0);  // step
}

// f'(x) for the activations (the ops layer writes other derivatives with ops).
template <UnaryOp Op, typename A>
TESSERA_HOST_DEVICE A unary_derivative(A x, A a) {
  using std::exp; using std::tanh;
  if constexpr (Op == UnaryOp::tanh) {
    const A y = tanh(x);
    return A(1) - y * y;
  } else if constexpr (Op == UnaryOp::sigmoid) {
    const A s = A(1) / (A(1) + exp(-x));
    return s * (A(1) - s);
  } else if constexpr (Op == UnaryOp::relu) {
    return x > A(0) ? A(1) : A(0);
  } else if constexpr (Op == UnaryOp::leaky_relu) {
    return x > A(0) ? A(1) : a;
  } else if constexpr (Op == UnaryOp::gelu) {
    const A k = A(0.7978845608028654), c = A(0.044715);
    const A t = tanh(k * (x + c * x * x * x));
    return A(0.5) * (A(1) + t) + A(0.5) * x * (A(1) - t * t) * k * (A(1) + A(3) * c * x * x);
  } else if constexpr (Op == UnaryOp::silu) {
    const A s = A(1) / (A(1) + exp(-x));
    return s * (A(1) + x * (A(1) - s));
  } else {
    return A(0);
  }
}

template <UnaryOp Op, typename A>
TESSERA_HOST_DEVICE A unary_second_derivative(A x, A a) {
  using std::exp; using std::tanh;
  if constexpr (Op == UnaryOp::tanh) {
    const A y = tanh(x);
    return A(-2) * y * (A(1) - y * y);
  } else if constexpr (Op == UnaryOp::sigmoid) {
    const A s = A(1) / (A(1) + exp(-x));
    return s * (A(1) - s) * (A(1) - A(2) * s);
  } else if constexpr (Op == UnaryOp::gelu) {
    const A k = A(0.7978845608028654), c = A(0.044715);
    const A t = tanh(k * (x + c * x * x * x));
    const A du = k * (A(1) + A(3) * c * x * x);
    const A ddu = A(6) * k * c * x;
    return (A(1) - t * t) * (du + A(0.5) * x * (ddu - A(2) * t * du * du));
  } else if constexpr (Op == UnaryOp::silu) {
    const A s = A(1) / (A(1) + exp(-x));
    return s * (A(1) - s) * (A(2) + x * (A(1) - A(2) * s));
  } else {
    return A(0);  // relu, leaky_relu: piecewise linear
  }
}

template <BinaryOp Op, typename A>
TESSERA_HOST_DEVICE A binary_value(A x, A y) {
  if constexpr (Op == BinaryOp::add) return x + y;
  else if constexpr (Op == BinaryOp::sub) return x - y;
  else if constexpr (Op == BinaryOp::mul) return x * y;
  else if constexpr (Op == BinaryOp::div) return x / y;
  else if constexpr (Op == BinaryOp::maximum) return x > y ? x : y;
  else if constexpr (Op == BinaryOp::minimum) return x < y ? x : y;
  else {
    using std::pow;
    return pow(x, y);
  }
}

// Calls fn(std::integral_constant<UnaryOp, op>{}).
template <typename Fn>
void with_unary_op(UnaryOp op, Fn&& fn) {
  switch (op) {
#define TESSERA_UNARY_CASE(name) \
  case UnaryOp::name: fn(std::integral_constant<UnaryOp, UnaryOp::name>{}); break;
    TESSERA_UNARY_CASE(neg) TESSERA_UNARY_CASE(exp) TESSERA_UNARY_CASE(log) TESSERA_UNARY_CASE(sqrt)
    TESSERA_UNARY_CASE(rsqrt) TESSERA_UNARY_CASE(abs) TESSERA_UNARY_CASE(sign) TESSERA_UNARY_CASE(square)
    TESSERA_UNARY_CASE(reciprocal) TESSERA_UNARY_CASE(tanh) TESSERA_UNARY_CASE(sigmoid) TESSERA_UNARY_CASE(relu)
    TESSERA_UNARY_CASE(leaky_relu) TESSERA_UNARY_CASE(gelu) TESSERA_UNARY_CASE(silu) TESSERA_UNARY_CASE(clamp)
    TESSERA_UNARY_CASE(pow_scalar) TESSERA_UNARY_CASE(affine) TESSERA_UNARY_CASE(step)
#undef TESSERA_UNARY_CASE
  }
}

// Same for the activations that have a fused derivative kernel.
template <typename Fn>
void with_activation_op(UnaryOp op, Fn&& fn) {
  switch (op) {
    case UnaryOp::tanh: fn(std::integral_constant<UnaryOp, UnaryOp::tanh>{}); break;
    case UnaryOp::sigmoid: fn(std::integral_constant<UnaryOp, UnaryOp::sigmoid>{}); break;
    case UnaryOp::relu: fn(std::integral_constant<UnaryOp, UnaryOp::relu>{}); break;
    case UnaryOp::leaky_relu: fn(std::integral_constant<UnaryOp, UnaryOp::leaky_relu>{}); break;
    case UnaryOp::gelu: fn(std::integral_constant<UnaryOp, UnaryOp::gelu>{}); break;
    case UnaryOp::silu: fn(std::integral_constant<UnaryOp, UnaryOp::silu>{}); break;
    default: break;
  }
}

template <typename Fn>
void with_binary_op(BinaryOp op, Fn&& fn) {
  switch (op) {
    case BinaryOp::add: fn(std::integral_constant<BinaryOp, BinaryOp::add>{}); break;
    case BinaryOp::sub: fn(std::integral_constant<BinaryOp, BinaryOp::sub>{}); break;
    case BinaryOp::mul: fn(std::integral_constant<BinaryOp, BinaryOp::mul>{}); break;
    case BinaryOp::div: fn(std::integral_constant<BinaryOp, BinaryOp::div>{}); break;
    case BinaryOp::maximum: fn(std::integral_constant<BinaryOp, BinaryOp::maximum>{}); break;
    case BinaryOp::minimum: fn(std::integral_constant<BinaryOp, BinaryOp::minimum>{}); break;
    case BinaryOp::pow: fn(std::integral_constant<BinaryOp, BinaryOp::pow>{}); break;
  }
}

}  // namespace tessera::kernels
