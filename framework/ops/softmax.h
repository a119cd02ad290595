// Differentiable softmax and log-softmax along one dimension.
//
// defines: softmax, log_softmax
//
// Any dimension works (negative counts from the end). The last dimension takes the fast row
// kernel; another dimension is handled in place by a column kernel (no transpose copy). Both
// subtract the maximum first, so logits of any size are safe; sums are in float (double for
// f64). The output has the input's dtype and is saved for the backward, which is one fused
// kernel, or, under create_graph, the differentiable formula
//   softmax: dx = y * (g - sum(g * y)),   log_softmax: dx = g - exp(y) * sum(g).
#pragma once

#include <cstdint>

#include "framework/core/tensor.h"

namespace tessera {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace tessera
