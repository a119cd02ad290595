// TrainMetrics: the Prometheus series of a training rank (`tessera_train_*`) and, with
// metrics.port = P, the /metrics endpoint on P + local rank.
//
// defines: tessera::train::TrainMetrics
//
// Series (every one with the constant labels rank and world; plus process_start_time_seconds):
//   tessera_train_step                     gauge      last finished optimizer step
//   tessera_train_loss                     gauge      training loss at the last log line (mean over ranks)
//   tessera_train_tokens_total             counter    tokens this rank trained on (jobs that count tokens)
//   tessera_train_examples_total           counter    examples (sequences, images) this rank trained on
//   tessera_train_step_seconds             histogram  host wall time of one optimizer step
//   tessera_train_allreduce_bytes_total    counter    {dtype} payload bytes of this rank's all-reduces
//                                                     (gradient buckets, and the few-byte flags and
//                                                     log averages); ZeRO's reduce-scatter/all-gather
//                                                     are not all-reduces and are not counted
//   tessera_train_allreduce_seconds        histogram  issue-to-completion time of each all-reduce
//   tessera_train_loss_scale               gauge      fp16 loss scale (1 without loss scaling)
//   tessera_train_skipped_steps_total      counter    steps skipped for inf/NaN gradients
//   tessera_train_grad_norm                gauge      gradient norm at the last log line (clipping on)
//   tessera_train_mfu                      gauge      model FLOP utilisation of the last step, 0..1:
//                                                     only when the job knows its FLOPs per item and
//                                                     metrics.peak_tflops is set
// Nothing here synchronises with a device: step() takes host-side numbers (wall time, counts,
// the scaler's host state, the communicators' byte counters) and logged() values the job has
// read back at its logging step anyway. On a GPU the step time is the host's, which equals the
// device's once the launch queue is full. Collective durations arrive through the process
// group's CommStats observer (the watchdog thread); the destructor removes the observer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "framework/train/distributed.h"

namespace tessera::metrics {
class Counter;
class Gauge;
class Histogram;
class MetricsHttpServer;
}  // namespace tessera::metrics

namespace tessera::amp {
class GradScaler;
}

namespace tessera::train {

class TrainMetrics {
 public:
  // flops_per_item: model FLOPs (forward + backward) per token or example, 0 if unknown.
  TrainMetrics(const DataParallel& dp, double flops_per_item = 0.0);
  ~TrainMetrics();
  TrainMetrics(const TrainMetrics&) = delete;
  TrainMetrics& operator=(const TrainMetrics&) = delete;

  // After every optimizer step (this rank's items; tokens 0 for jobs without tokens).
  void step(int64_t step, double seconds, int64_t tokens, int64_t examples, const amp::GradScaler& scaler);
  // At a logging step: grad_norm < 0 means none.
  void logged(double loss, double grad_norm);
  // metrics.dump: writes OUT/metrics/rank<R>.prom (the exposition text) — a final record for
  // runs without a Prometheus server, and for tests.
  void finish(const std::string& out_dir);
  // The bound port (0 when not serving).
  uint16_t port() const;

 private:
  void sync_allreduce_bytes();

  const DataParallel& dp_;
  double flops_per_item_;
  metrics::Gauge *step_, *loss_, *loss_scale_, *grad_norm_, *mfu_ = nullptr;
  metrics::Counter *tokens_, *examples_, *skipped_;
  metrics::Counter* allreduce_bytes_[3];  // f32, bf16, f16
  int64_t allreduce_bytes_seen_[3] = {0, 0, 0};
  metrics::Histogram *step_seconds_, *allreduce_seconds_;
  int64_t skipped_seen_ = 0;
  std::unique_ptr<metrics::MetricsHttpServer> server_;
};

}  // namespace tessera::train
