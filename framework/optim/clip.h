// Gradient clipping by global L2 norm (torch.nn.utils.clip_grad_norm_), without host sync.
//
// defines: tessera::optim::clip_grad_norm
//
// norm = sqrt(sum over every gradient element of g^2); each gradient is scaled in place by
// min(1, max_norm / (norm + 1e-6)). The norm, the coefficient and the scaling all stay on the
// gradients' device (kernels/optim.h: partial sums per fixed-size chunk, summed in order), so
// a training step that clips can be captured as a CUDA graph; read the returned norm back
// whenever convenient. Parameters without a gradient are skipped.
#pragma once

#include <vector>

#include "framework/core/tensor.h"

namespace tessera::optim {

// Returns the norm before clipping as a 0-dim f32 tensor on the gradients' device (CPU zeros
// when no parameter has a gradient). All gradients must be on one device.
Tensor clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace tessera::optim
