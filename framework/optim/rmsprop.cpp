// RMSprop (rmsprop.h): validation and dispatch to the fused kernels.
#include "framework/optim/rmsprop.h"

#include "framework/autograd/grad_mode.h"
#include "framework/core/cuda_context.h"

namespace tessera::optim {

RMSprop::RMSprop(std::vector<Tensor> params, RmspropOptions options)
    : Optimizer(std::move(params), options.lr), options_(options) {
  TESSERA_CHECK(options.alpha >= 0.0, "RMSprop: alpha ", options.alpha, " is negative");
  TESSERA_CHECK(options.eps >= 0.0, "RMSprop: eps ", options.eps, " is negative");
  TESSERA_CHECK(options.momentum >= 0.0, "RMSprop: momentum ", options.momentum, " is negative");
  TESSERA_CHECK(options.weight_decay >= 0.0, "RMSprop: weight_decay ", options.weight_decay, " is negative");
  state_names_ = {"square_avg"};
  if (options.momentum > 0.0) state_names_.push_back("momentum_buffer");
  if (options.centered) state_names_.push_back("grad_avg");
}

void RMSprop::step() {
  NoGradGuard no_grad;
  auto groups = prepare_step({"square_avg", options_.momentum > 0.0 ? "momentum_buffer" : "",
                              options_.centered ? "grad_avg" : ""});
  const kernels::RmspropConfig config{lr_, options_.alpha, options_.eps, options_.weight_decay, options_.momentum,
                                      options_.centered};
  for (auto& group : groups) {
    const auto n = static_cast<int64_t>(group.tensors.size());
    if (group.device.is_cpu()) {
      kernels::rmsprop_update_cpu(group.dtype, group.tensors.data(), n, config);
    } else {
#ifdef TESSERA_WITH_CUDA
      kernels::rmsprop_update_cuda(group.dtype, group.tensors.data(), n, config,
                                   cuda::compute_stream(group.device.index));
#endif
    }
  }
}

}  // namespace tessera::optim
