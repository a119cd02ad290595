// SGD (sgd.h): validation and dispatch to the fused kernels.
#include "framework/optim/sgd.h"

#include "framework/autograd/grad_mode.h"
#include "framework/core/cuda_context.h"

namespace tessera::optim {

SGD::SGD(std::vector<Tensor> params, SgdOptions options) : Optimizer(std::move(params), options.lr), options_(options) {
  TESSERA_CHECK(options.momentum >= 0.0, "SGD: momentum ", options.momentum, " is negative");
  TESSERA_CHECK(options.weight_decay >= 0.0, "SGD: weight_decay ", options.weight_decay, " is negative");
  TESSERA_CHECK(!options.nesterov || (options.momentum > 0.0 && options.dampening == 0.0),
                "SGD: nesterov momentum needs momentum > 0 and dampening = 0 (got momentum ", options.momentum,
                ", dampening ", options.dampening, ")");
  if (options.momentum != 0.0) state_names_ = {"momentum_buffer"};
}

void SGD::step() {
  NoGradGuard no_grad;
  const bool momentum = options_.momentum != 0.0;
  auto groups = prepare_step({momentum ? "momentum_buffer" : ""});
  kernels::SgdConfig config{lr_, options_.momentum, options_.dampening, options_.weight_decay, options_.nesterov};
  for (auto& group : groups) {
    // The kernel starts the momentum buffer as the gradient where step == 1; like PyTorch, do
    // that whenever the buffer is new (e.g. after loading a state without one).
    for (size_t k = 0; k < group.tensors.size(); ++k) group.tensors[k].step = group.fresh_state[k] ? 1 : 2;
    const auto n = static_cast<int64_t>(group.tensors.size());
    if (group.device.is_cpu()) {
      kernels::sgd_update_cpu(group.dtype, group.tensors.data(), n, config);
    } else {
#ifdef TESSERA_WITH_CUDA
      kernels::sgd_update_cuda(group.dtype, group.tensors.data(), n, config, cuda::compute_stream(group.device.index));
#endif
    }
  }
}

}  // namespace tessera::optim
