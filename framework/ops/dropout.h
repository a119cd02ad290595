// Dropout with a fused, regenerated mask.
//
// defines: dropout
//
// dropout(x, p, training, gen) zeroes each element with probability p and scales the rest by
// 1/(1-p). It is the identity (returns x itself) when !training or p == 0; p must lie in [0, 1).
// The keep mask is never stored: element i is kept when Philox gives
// random_uniform_at(seed, offset, i) < 1-p, with `offset` drawn from the generator
// (`gen`, or default_generator()) by Generator::take(x.numel()). The backward node keeps only
// (seed, offset, p) and applies the same fused kernel to the gradient. CPU and CUDA drop the
// same elements for the same generator state.
#pragma once

#include "framework/core/rng.h"
#include "framework/core/tensor.h"

namespace tessera {

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

}  // namespace tessera
