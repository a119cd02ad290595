// TrainMetrics (train_metrics.h): registration, per-step updates, the endpoint and the dump.
#include "framework/train/train_metrics.h"

#include <filesystem>
#include <fstream>

#include "framework/amp/grad_scaler.h"
#include "framework/core/error.h"
#include "framework/metrics/exposition.h"
#include "framework/metrics/http_server.h"
#include "framework/metrics/registry.h"

namespace tessera::train {
namespace {

constexpr DType kWireDTypes[3] = {DType::f32, DType::bf16, DType::f16};

}  // namespace

TrainMetrics::TrainMetrics(const DataParallel& dp, double flops_per_item) : dp_(dp), flops_per_item_(flops_per_item) {
  auto& r = metrics::default_registry();
  r.set_constant_label("rank", std::to_string(dp.rank()));
  r.set_constant_label("world", std::to_string(dp.world_size()));
  metrics::register_process_start_time(r);
  step_ = &r.gauge("tessera_train_step", "Last finished optimizer step.").get();
  loss_ = &r.gauge("tessera_train_loss", "Training loss at the last log line (mean over ranks).").get();
  tokens_ = &r.counter("tessera_train_tokens_total", "Tokens this rank trained on.").get();
  examples_ = &r.counter("tessera_train_examples_total", "Examples (sequences or images) this rank trained on.").get();
  step_seconds_ = &r.histogram("tessera_train_step_seconds", "Host wall time of one optimizer step in seconds.",
                               metrics::exponential_buckets(0.001, 2.0, 20))
                       .get();
  auto& bytes = r.counter("tessera_train_allreduce_bytes_total",
                          "Payload bytes of this rank's all-reduce collectives, by wire dtype.", {"dtype"});
  for (int i = 0; i < 3; ++i) allreduce_bytes_[i] = &bytes.labels({dtype_name(kWireDTypes[i])});
  allreduce_seconds_ = &r.histogram("tessera_train_allreduce_seconds",
                                    "Time from issue to completion of one all-reduce in seconds.",
                                    metrics::exponential_buckets(1e-5, 4.0, 12))
                            .get();
  loss_scale_ = &r.gauge("tessera_train_loss_scale", "Dynamic loss scale of fp16 training (1 without scaling).").get();
  loss_scale_->set(1.0);
  skipped_ = &r.counter("tessera_train_skipped_steps_total", "Optimizer steps skipped for non-finite gradients.").get();
  grad_norm_ = &r.gauge("tessera_train_grad_norm", "Global gradient norm before clipping at the last log line.").get();
  if (flops_per_item_ > 0 && dp.settings().peak_tflops > 0)
    mfu_ = &r.gauge("tessera_train_mfu",
                    "Model FLOP utilisation of the last step: model FLOP/s over metrics.peak_tflops, 0 to 1.")
                .get();

  if (dist::CommStats* stats = dp.stats()) {
    metrics::Histogram* seconds = allreduce_seconds_;
    stats->set_observer([seconds](const dist::CollectiveRecord& record) {
      if (record.kind == dist::CollectiveKind::all_reduce) seconds->observe(record.seconds);
    });
  }
  if (dp.settings().metrics_port > 0) {
    metrics::MetricsHttpServerOptions o;
    o.address = dp.settings().metrics_address;
    o.port = static_cast<uint16_t>(dp.settings().metrics_port + dp.local_rank());
    server_ = std::make_unique<metrics::MetricsHttpServer>(r, o);
    std::printf("rank %d: metrics on http://%s:%u/metrics\n", dp.rank(), o.address.c_str(),
                static_cast<unsigned>(server_->port()));
    std::fflush(stdout);
  }
}

TrainMetrics::~TrainMetrics() {
  if (dist::CommStats* stats = dp_.stats()) stats->set_observer({});
  if (server_) server_->stop();
}

uint16_t TrainMetrics::port() const { return server_ ? server_->port() : 0; }

void TrainMetrics::step(int64_t step, double seconds, int64_t tokens, int64_t examples,
                        const amp::GradScaler& scaler) {
  step_->set(static_cast<double>(step));
  step_seconds_->observe(seconds);
  if (tokens > 0) tokens_->inc(static_cast<double>(tokens));
  if (examples > 0) examples_->inc(static_cast<double>(examples));
  if (scaler.enabled()) {
    loss_scale_->set(scaler.loss_scale());
    if (scaler.skipped_steps() > skipped_seen_) skipped_->inc(static_cast<double>(scaler.skipped_steps() - skipped_seen_));
    skipped_seen_ = scaler.skipped_steps();
  }
  sync_allreduce_bytes();
  if (mfu_ != nullptr && seconds > 0) {
    const auto items = static_cast<double>(tokens > 0 ? tokens : examples);
    mfu_->set(flops_per_item_ * items / seconds / (dp_.settings().peak_tflops * 1e12));
  }
}

void TrainMetrics::sync_allreduce_bytes() {
  dist::CommStats* stats = dp_.stats();
  if (stats == nullptr) return;
  for (int i = 0; i < 3; ++i) {
    const int64_t total = stats->bytes(dist::CollectiveKind::all_reduce, kWireDTypes[i]);
    if (total > allreduce_bytes_seen_[i]) allreduce_bytes_[i]->inc(static_cast<double>(total - allreduce_bytes_seen_[i]));
    allreduce_bytes_seen_[i] = total;
  }
}

void TrainMetrics::logged(double loss, double grad_norm) {
  loss_->set(loss);
  if (grad_norm >= 0) grad_norm_->set(grad_norm);
}

void TrainMetrics::finish(const std::string& out_dir) {
  sync_allreduce_bytes();
  if (!dp_.settings().metrics_dump) return;
  const std::filesystem::path dir = std::filesystem::path(out_dir) / "metrics";
  std::filesystem::create_directories(dir);
  const std::filesystem::path file = dir / ("rank" + std::to_string(dp_.rank()) + ".prom");
  std::ofstream out(file);
  out << metrics::exposition_text(metrics::default_registry());
  TESSERA_CHECK(out.good(), "metrics.dump: cannot write ", file.string());
}

}  // namespace tessera::train
