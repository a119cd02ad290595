// Learning-rate schedules (schedule.h).
#include "framework/optim/schedule.h"

#include <cmath>

#include "framework/core/error.h"

namespace tessera::optim {
namespace {

void check_step(const char* schedule, int64_t step) {
  TESSERA_CHECK(step >= 0, schedule, ": step ", step, " is negative");
}

double warmup_value(double base_lr, int64_t step, int64_t warmup_steps) {
  return base_lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
}

}  // namespace

Constant::Constant(double base_lr, int64_t warmup_steps) : base_lr(base_lr), warmup_steps(warmup_steps) {
  TESSERA_CHECK(base_lr >= 0.0, "constant schedule: learning rate ", base_lr, " is negative");
  TESSERA_CHECK(warmup_steps >= 0, "constant schedule: warmup_steps ", warmup_steps, " is negative");
}

double Constant::at(int64_t step) const {
  check_step("constant schedule", step);
  return step < warmup_steps ? warmup_value(base_lr, step, warmup_steps) : base_lr;
}

WarmupCosine::WarmupCosine(double base_lr, int64_t warmup_steps, int64_t total_steps, double min_lr)
    : base_lr(base_lr), warmup_steps(warmup_steps), total_steps(total_steps), min_lr(min_lr) {
  TESSERA_CHECK(base_lr >= 0.0, "warmup_cosine schedule: learning rate ", base_lr, " is negative");
  TESSERA_CHECK(min_lr >= 0.0 && min_lr <= base_lr, "warmup_cosine schedule: min_lr ", min_lr,
                " must be in [0, base_lr = ", base_lr, "]");
  TESSERA_CHECK(warmup_steps >= 0, "warmup_cosine schedule: warmup_steps ", warmup_steps, " is negative");
  TESSERA_CHECK(total_steps >= warmup_steps && total_steps > 0, "warmup_cosine schedule: total_steps ", total_steps,
                " must be positive and at least warmup_steps (", warmup_steps, ")");
}

double WarmupCosine::at(int64_t step) const {
  check_step("warmup_cosine schedule", step);
  if (step < warmup_steps) return warmup_value(base_lr, step, warmup_steps);
  if (step >= total_steps) return min_lr;
  const double progress = static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
  return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

const std::vector<std::string>& schedule_names() {
  static const std::vector<std::string> names = {"constant", "warmup_cosine", "cosine"};
  return names;
}

std::unique_ptr<LrSchedule> make_schedule(const std::string& name, double base_lr, int64_t warmup_steps,
                                          int64_t total_steps, double min_lr) {
  if (name == "constant") return std::make_unique<Constant>(base_lr, warmup_steps);
  if (name == "warmup_cosine" || name == "cosine")
    return std::make_unique<WarmupCosine>(base_lr, warmup_steps, total_steps, min_lr);
  detail::throw_error(detail::cat("unknown learning-rate schedule \"", name,
                                  "\" (valid: constant, warmup_cosine, cosine)"));
}

}  // namespace tessera::optim
