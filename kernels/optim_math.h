// Per-element formulas of the fused optimizer updates, compiled for host and device.
//
// defines: tessera::kernels::SgdCoeffs, AdamCoeffs, RmspropCoeffs (hyper-parameters in the
//          arithmetic type A, derived constants precomputed in double), sgd_element,
//          adam_element, rmsprop_element
//
// They follow the single-tensor code paths of torch.optim (1.13):
//   SGD:     g += wd*p;  buf = (step 1) ? g : momentum*buf + (1-dampening)*g;
//            g = nesterov ? g + momentum*buf : buf   (when momentum != 0);   p -= lr*g
//   Adam:    g += wd*p (Adam) | p *= 1 - lr*wd (AdamW);  m = b1*m + (1-b1)*g;
//            v = b2*v + (1-b2)*g^2;  p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps),
//            bc1 = 1 - b1^step, bc2 = 1 - b2^step (per tensor, from the host)
//   RMSprop: g += wd*p;  sq = alpha*sq + (1-alpha)*g^2;  avg = sqrt(sq) or, centered,
//            ga = alpha*ga + (1-alpha)*g, avg = sqrt(sq - ga^2);  avg += eps;
//            momentum > 0: buf = momentum*buf + g/avg, p -= lr*buf;  else p -= lr*g/avg
// Constants such as 1 - beta1 are computed in double and rounded once to A, as PyTorch
// does with its Python-float scalars.
#pragma once

#include <cmath>

#include "kernels/optim.h"
#include "kernels/philox.h"  // TESSERA_HOST_DEVICE

namespace tessera::kernels {

template <typename A>
struct SgdCoeffs {
  A lr, momentum, one_minus_dampening, weight_decay;
  bool nesterov;
  explicit SgdCoeffs(const SgdConfig& c)
      : lr(A(c.lr)), momentum(A(c.momentum)), one_minus_dampening(A(1.0 - c.dampening)),
        weight_decay(A(c.weight_decay)), nesterov(c.nesterov) {}
};

// `first`: the tensor's first update (the momentum buffer starts as the gradient).
template <typename A>
TESSERA_HOST_DEVICE A sgd_element(const SgdCoeffs<A>& c, bool first, A p, A g, A& buf) {
  if (c.weight_decay != A(0)) g = g + c.weight_decay * p;
  if (c.momentum != A(0)) {
    buf = first ? g : c.momentum * buf + c.one_minus_dampening * g;
    g = c.nesterov ? g + c.momentum * buf : buf;
  }
  return p - c.lr * g;
}

template <typename A>
struct AdamCoeffs {
  A beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, decay;
  bool decoupled;
  explicit AdamCoeffs(const AdamConfig& c)
      : beta1(A(c.beta1)), one_minus_beta1(A(1.0 - c.beta1)), beta2(A(c.beta2)), one_minus_beta2(A(1.0 - c.beta2)),
        eps(A(c.eps)), weight_decay(A(c.weight_decay)), decay(A(1.0 - c.lr * c.weight_decay)),
        decoupled(c.decoupled_weight_decay) {}
};

// step_size = lr / (1 - beta1^step), bc2_sqrt = sqrt(1 - beta2^step), both from the host.
template <typename A>
TESSERA_HOST_DEVICE A adam_element(const AdamCoeffs<A>& c, A step_size, A bc2_sqrt, A p, A g, A& m, A& v) {
  using std::sqrt;
  if (c.weight_decay != A(0)) {
    if (c.decoupled) {
      p = p * c.decay;
    } else {
      g = g + c.weight_decay * p;
    }
  }
  m = c.beta1 * m + c.one_minus_beta1 * g;
  v = c.beta2 * v + c.one_minus_beta2 * g * g;
  const A denom = sqrt(v) / bc2_sqrt + c.eps;
  return p - step_size * (m / denom);
}

template <typename A>
struct RmspropCoeffs {
  A lr, alpha, one_minus_alpha, eps, weight_decay, momentum;
  bool centered;
  explicit RmspropCoeffs(const RmspropConfig& c)
      : lr(A(c.lr)), alpha(A(c.alpha)), one_minus_alpha(A(1.0 - c.alpha)), eps(A(c.eps)),
        weight_decay(A(c.weight_decay)), momentum(A(c.momentum)), centered(c.centered) {}
};

template <typename A>
TESSERA_HOST_DEVICE A rmsprop_element(const RmspropCoeffs<A>& c, A p, A g, A& square_avg, A& buf, A& grad_avg) {
  using std::sqrt;
  if (c.weight_decay != A(0)) g = g + c.weight_decay * p;
  square_avg = c.alpha * square_avg + c.one_minus_alpha * g * g;
  A avg;
  if (c.centered) {
    grad_avg = c.alpha * grad_avg + c.one_minus_alpha * g;
    avg = sqrt(square_avg - grad_avg * grad_avg);
  } else {
    avg = sqrt(square_avg);
  }
  avg = avg + c.eps;
  if (c.momentum > A(0)) {
    buf = c.momentum * buf + g / avg;
    return p - c.lr * buf;
  }
  return p - c.lr * (g / avg);
}

}  // namespace tessera::kernels
