// GradScaler: dynamic loss scaling for fp16 training.
//
// defines: tessera::amp::GradScaler, GradScalerOptions, GradScalerState, FlagReducer
//
// fp16 gradients underflow unless the loss is scaled up before backward. The scaler multiplies
// the loss by `scale` (initially 2^16); after backward `unscale()` divides every gradient by it
// in place and checks for non-finite values in the same pass (kernels/amp.h, on the gradients'
// device). A step whose gradients overflowed is skipped and the scale halves; after
// `growth_interval` (2000) clean steps in a row it doubles. All of these are configurable.
//
// Across ranks: the overflow flag is reduced with MAX through `FlagReducer` before it is read
// (dist::max_flag_reducer gives one), so every rank skips the same steps even if only one saw an
// inf. A rank must call unscale() every step, with or without gradients, since the reduction is
// a collective.
//
// Host synchronisation: reading the flag (`found_inf` as a bool) is the ONE device-to-host sync
// per step — the decision to step or skip is made on the host. Everything else (unscaling, the
// check, the reduction) is queued on the device. The amp layer sits below dist, hence the
// reducer is passed in as a function.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "framework/core/tensor.h"
#include "framework/optim/optimizer.h"

namespace tessera::amp {

struct GradScalerOptions {
  double init_scale = 65536.0;     // amp.init_scale
  double growth_factor = 2.0;      // amp.growth_factor
  double backoff_factor = 0.5;     // amp.backoff_factor
  int64_t growth_interval = 2000;  // amp.growth_interval: clean steps before the scale grows
  bool enabled = true;             // off: scale() and unscale() do nothing, step() just steps
};

// What a checkpoint must keep to continue exactly.
struct GradScalerState {
  double scale = 65536.0;
  int64_t growth_tracker = 0;  // clean steps since the last change
  int64_t skipped_steps = 0;
};

// Replaces a one-element f32 flag by its maximum over all ranks (in place).
using FlagReducer = std::function<void(const Tensor& flag)>;

class GradScaler {
 public:
  explicit GradScaler(GradScalerOptions options = {}, FlagReducer reduce_flag = {});

  // loss * scale (differentiable); the loss itself when disabled.
  Tensor scale(const Tensor& loss) const;
  // Divides the gradients of `params` by the scale in place; returns whether any rank found a
  // non-finite gradient. Parameters without a gradient are skipped. Once per step.
  bool unscale(const std::vector<Tensor>& params);
  // unscale(optimizer.params()) unless done this step, optimizer.step() unless an overflow was
  // found, then update(). Returns whether the optimizer stepped.
  bool step(optim::Optimizer& optimizer);
  // Ends the step: adjusts the scale (see the top of this file). step() calls it; call it
  // yourself after unscale() when stepping another optimizer (ZeRO).
  void update(bool found_inf);

  bool enabled() const { return options_.enabled; }
  double loss_scale() const { return state_.scale; }
  int64_t skipped_steps() const { return state_.skipped_steps; }
  int64_t growth_tracker() const { return state_.growth_tracker; }
  const GradScalerOptions& options() const { return options_; }

  GradScalerState state() const { return state_; }
  void load_state(const GradScalerState& state);

 private:
  GradScalerOptions options_;
  FlagReducer reduce_flag_;
  GradScalerState state_;
  bool unscaled_ = false;   // unscale() ran this step
  bool found_inf_ = false;  // its result
};

}  // namespace tessera::amp
