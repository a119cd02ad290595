// Progress lines: fixed-width step counter, loss, windowed throughput, elapsed time and ETA.
#include "framework/train/progress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tessera::train {

std::string format_duration(double seconds) {
  const auto total = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  const int64_t h = total / 3600, m = (total / 60) % 60, s = total % 60;
  char buf[32];
  if (h > 0) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(h),
                           static_cast<long long>(m), static_cast<long long>(s));
  else std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(m), static_cast<long long>(s));
  return buf;
}

namespace {
std::string format_rate(double per_second) {
  char buf[32];
  if (per_second >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", per_second / 1e6);
  else if (per_second >= 1e4) std::snprintf(buf, sizeof buf, "%.1fk", per_second / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", per_second);
  return buf;
}
}  // namespace

Progress::Progress(int64_t total_steps, int64_t every, std::string unit, int64_t first_step, bool enabled)
    : total_steps_(total_steps), every_(every), unit_(std::move(unit)), enabled_(enabled), start_(Clock::now()),
      window_start_(start_), window_first_step_(first_step) {}

void Progress::print(int64_t step, double loss, const std::string& extra) {
  const auto now = Clock::now();
  const double window = std::chrono::duration<double>(now - window_start_).count();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const int64_t window_steps = step - window_first_step_;
  const double rate = window > 0 ? static_cast<double>(items_) / window : 0.0;
  const double seconds_per_step = window_steps > 0 ? window / static_cast<double>(window_steps) : 0.0;
  const double eta = seconds_per_step * static_cast<double>(total_steps_ - step);
  if (enabled_) {
    const int width = static_cast<int>(std::to_string(total_steps_).size());
    std::printf("step %*lld/%lld | loss %.4f | %s %s/s | elapsed %s | ETA %s%s%s\n", width,
                static_cast<long long>(step), static_cast<long long>(total_steps_), loss, format_rate(rate).c_str(),
                unit_.c_str(), format_duration(elapsed).c_str(), format_duration(eta).c_str(),
                extra.empty() ? "" : " | ", extra.c_str());
    std::fflush(stdout);
  }
  window_start_ = now;
  window_first_step_ = step;
  items_ = 0;
}

void Progress::note(const std::string& text) const {
  if (!enabled_) return;
  std::printf("%s\n", text.c_str());
  std::fflush(stdout);
}

}  // namespace tessera::train
