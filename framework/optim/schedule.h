// Learning-rate schedules: the learning rate as a function of the step.
//
// defines: tessera::optim::LrSchedule, Constant, WarmupCosine, make_schedule, schedule_names
//
// A schedule is a pure function of the step (0-based: at(0) is the rate of the first update),
// so a resumed run gets the same rates from the saved step alone. The trainer calls
// optimizer.set_lr(schedule.at(step)) before each step().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tessera::optim {

struct LrSchedule {
  virtual ~LrSchedule() = default;
  virtual double at(int64_t step) const = 0;
};

// base_lr at every step; with warmup_steps > 0, linear from 0 over the first warmup_steps:
// at(s) = base_lr * s / warmup_steps for s < warmup_steps.
struct Constant : LrSchedule {
  explicit Constant(double base_lr, int64_t warmup_steps = 0);
  double at(int64_t step) const override;
  double base_lr;
  int64_t warmup_steps;
};

// Linear warmup from 0 (at(s) = base_lr * s / warmup_steps for s < warmup_steps), then a
// half cosine from base_lr down to min_lr, reached at total_steps and held afterwards:
// at(s) = min_lr + (base_lr - min_lr) * (1 + cos(pi * (s - warmup) / (total - warmup))) / 2.
struct WarmupCosine : LrSchedule {
  WarmupCosine(double base_lr, int64_t warmup_steps, int64_t total_steps, double min_lr = 0.0);
  double at(int64_t step) const override;
  double base_lr;
  int64_t warmup_steps, total_steps;
  double min_lr;
};

// "constant" or "warmup_cosine" (alias "cosine"); an unknown name is an error listing these.
// `total_steps` and `min_lr` are used by the cosine schedule only.
std::unique_ptr<LrSchedule> make_schedule(const std::string& name, double base_lr, int64_t warmup_steps = 0,
                                          int64_t total_steps = 0, double min_lr = 0.0);
const std::vector<std::string>& schedule_names();

}  // namespace tessera::optim
