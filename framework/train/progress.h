// Progress: the human-readable progress lines a training run prints to stdout.
//
// defines: tessera::train::Progress, format_duration
//
//   step   200/2000 | loss 0.4123 | 10.5k examples/s | elapsed 0:19 | ETA 2:51
//
// The trainer calls `count(items)` after every step (examples or tokens in that step) and
// `print(step, loss)` at the steps where `due(step)` is true (every N steps and the last one).
// Throughput is measured over the window since the previous line, ETA from that throughput
// and the steps left. Times are wall-clock of this process (a resumed run starts its clock
// again). A disabled Progress (ranks other than 0) prints nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace tessera::train {

// 75 s -> "1:15", 3725 s -> "1:02:05".
std::string format_duration(double seconds);

class Progress {
 public:
  // unit: what `count` counts ("examples", "tokens"); every <= 0 prints only the last step.
  Progress(int64_t total_steps, int64_t every, std::string unit = "examples", int64_t first_step = 0,
           bool enabled = true);

  bool due(int64_t step) const { return step == total_steps_ || (every_ > 0 && step % every_ == 0); }
  void count(int64_t items) { items_ += items; }
  // Prints one line; `extra` is appended as " | extra" when not empty.
  void print(int64_t step, double loss, const std::string& extra = "");
  // A free-form line (evaluation results, checkpoint notes), flushed.
  void note(const std::string& text) const;

 private:
  using Clock = std::chrono::steady_clock;
  int64_t total_steps_;
  int64_t every_;
  std::string unit_;
  bool enabled_;
  Clock::time_point start_;
  Clock::time_point window_start_;
  int64_t window_first_step_;
  int64_t items_ = 0;
};

}  // namespace tessera::train
