// Adam and AdamW (adam.h): validation and dispatch to the fused kernels.
#include "framework/optim/adam.h"

#include "framework/autograd/grad_mode.h"
#include "framework/core/cuda_context.h"

namespace tessera::optim {

Adam::Adam(std::vector<Tensor> params, AdamOptions options) : Adam(std::move(params), options, false) {}

Adam::Adam(std::vector<Tensor> params, AdamOptions options, bool decoupled_weight_decay)
    : Optimizer(std::move(params), options.lr), options_(options), decoupled_(decoupled_weight_decay) {
  const char* name = decoupled_weight_decay ? "AdamW" : "Adam";
  TESSERA_CHECK(options.beta1 >= 0.0 && options.beta1 < 1.0, name, ": beta1 ", options.beta1, " is not in [0, 1)");
  TESSERA_CHECK(options.beta2 >= 0.0 && options.beta2 < 1.0, name, ": beta2 ", options.beta2, " is not in [0, 1)");
  TESSERA_CHECK(options.eps >= 0.0, name, ": eps ", options.eps, " is negative");
  TESSERA_CHECK(options.weight_decay >= 0.0, name, ": weight_decay ", options.weight_decay, " is negative");
  state_names_ = {"exp_avg", "exp_avg_sq"};
}

void Adam::step() {
  NoGradGuard no_grad;
  auto groups = prepare_step({"exp_avg", "exp_avg_sq"});
  const kernels::AdamConfig config{lr_, options_.beta1, options_.beta2, options_.eps, options_.weight_decay, decoupled_};
  for (auto& group : groups) {
    const auto n = static_cast<int64_t>(group.tensors.size());
    if (group.device.is_cpu()) {
      kernels::adam_update_cpu(group.dtype, group.tensors.data(), n, config);
    } else {
#ifdef TESSERA_WITH_CUDA
      kernels::adam_update_cuda(group.dtype, group.tensors.data(), n, config, cuda::compute_stream(group.device.index));
#endif
    }
  }
}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions o)
    : Adam(std::move(params), AdamOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay}, true) {}

}  // namespace tessera::optim
