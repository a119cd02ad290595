// Dynamic loss scaling (grad_scaler.h).
#include "framework/amp/grad_scaler.h"

#include <cmath>
#include <map>

#include "framework/autograd/grad_mode.h"
#include "framework/core/cuda_context.h"
#include "framework/core/error.h"
#include "framework/ops/elementwise.h"
#include "kernels/amp.h"

namespace tessera::amp {

GradScaler::GradScaler(GradScalerOptions options, FlagReducer reduce_flag)
    : options_(options), reduce_flag_(std::move(reduce_flag)) {
  TESSERA_CHECK(options.init_scale > 0 && std::isfinite(options.init_scale), "config key `amp.init_scale` must be a ",
                "positive finite number, got ", options.init_scale);
  TESSERA_CHECK(options.growth_factor > 1, "config key `amp.growth_factor` must be above 1, got ",
                options.growth_factor);
  TESSERA_CHECK(options.backoff_factor > 0 && options.backoff_factor < 1,
                "config key `amp.backoff_factor` must be in (0, 1), got ", options.backoff_factor);
  TESSERA_CHECK(options.growth_interval > 0, "config key `amp.growth_interval` must be positive, got ",
                options.growth_interval);
  state_.scale = options.init_scale;
}

Tensor GradScaler::scale(const Tensor& loss) const {
  if (!options_.enabled) return loss;
  return loss * state_.scale;
}

bool GradScaler::unscale(const std::vector<Tensor>& params) {
  TESSERA_CHECK(!unscaled_, "GradScaler::unscale: already called this step (call update() or step() first)");
  unscaled_ = true;
  found_inf_ = false;
  if (!options_.enabled) return false;
  NoGradGuard no_grad;

  // Gradients grouped by dtype; all on one device.
  struct Group {
    std::vector<void*> data;
    std::vector<int64_t> numels;
  };
  std::map<DType, Group> groups;
  Device device = Device::cpu();
  bool any = false;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    TESSERA_CHECK(is_floating_point(g.dtype()), "GradScaler::unscale: a ", dtype_name(g.dtype()), " gradient");
    if (any)
      TESSERA_CHECK(g.device() == device, "GradScaler::unscale: gradients on ", device.str(), " and ",
                    g.device().str(), "; one scaler per device");
    device = g.device();
    any = true;
    if (!g.is_contiguous()) {
      g = g.clone_data();
      p.set_grad(g);
    }
    groups[g.dtype()].data.push_back(g.data_ptr());
    groups[g.dtype()].numels.push_back(g.numel());
  }

  Tensor flag = Tensor::zeros({1}, DType::f32, device);
  const double inv_scale = 1.0 / state_.scale;
  for (auto& [dtype, group] : groups) {
    const auto count = static_cast<int64_t>(group.data.size());
    if (device.is_cpu()) {
      kernels::unscale_check_cpu(dtype, group.data.data(), group.numels.data(), count, inv_scale, flag.data<float>());
    } else {
#ifdef TESSERA_WITH_CUDA
      kernels::unscale_check_cuda(dtype, group.data.data(), group.numels.data(), count, inv_scale,
                                  flag.data<float>(), cuda::compute_stream(device.index));
#endif
    }
  }
  if (reduce_flag_) reduce_flag_(flag);
  found_inf_ = flag.item() != 0.0;  // the one host synchronisation of the step
  return found_inf_;
}

bool GradScaler::step(optim::Optimizer& optimizer) {
  if (!unscaled_) unscale(optimizer.params());
  const bool stepped = !found_inf_;
  if (stepped) optimizer.step();
  update(found_inf_);
  return stepped;
}

void GradScaler::update(bool found_inf) {
  unscaled_ = false;
  found_inf_ = false;
  if (!options_.enabled) return;
  if (found_inf) {
    state_.scale *= options_.backoff_factor;
    state_.growth_tracker = 0;
    ++state_.skipped_steps;
    return;
  }
  if (++state_.growth_tracker >= options_.growth_interval) {
    const double grown = state_.scale * options_.growth_factor;
    if (std::isfinite(grown)) state_.scale = grown;
    state_.growth_tracker = 0;
  }
}

void GradScaler::load_state(const GradScalerState& state) {
  TESSERA_CHECK(state.scale > 0 && std::isfinite(state.scale), "GradScaler::load_state: scale ", state.scale,
                " is not a positive finite number");
  TESSERA_CHECK(state.growth_tracker >= 0 && state.skipped_steps >= 0,
                "GradScaler::load_state: negative counters (growth_tracker ", state.growth_tracker,
                ", skipped_steps ", state.skipped_steps, ")");
  state_ = state;
  unscaled_ = false;
  found_inf_ = false;
}

}  // namespace tessera::amp
