// Prints the exposition of a registry that uses every feature of framework/metrics — each metric
// kind, labels whose values need escaping, constant labels, histograms with and without labels,
// special float values — so that `promtool check metrics` can judge the text (see
// promtool_check.sh).
#include <cstdio>
#include <exception>
#include <limits>

#include "framework/metrics/exposition.h"
#include "framework/metrics/registry.h"

int main() {
  using namespace tessera::metrics;
  try {
    Registry registry({.constant_labels = {{"rank", "0"}, {"world", "2"}}});
    register_process_start_time(registry);

    CounterFamily& tokens = registry.counter("tessera_tokens_total", "Tokens processed\nby dtype (a \\ b).", {"dtype"});
    tokens.labels({"bf16"}).inc(1234567);
    tokens.labels({"f32"}).inc(0.5);
    registry.counter("tessera_bytes_sent_total", "Bytes sent.").get().inc(1e18);

    GaugeFamily& paths = registry.gauge("tessera_checkpoint_bytes", "Size of the last checkpoint.", {"path"});
    paths.labels({"C:\\runs\\\"gan\"\nsecond line"}).set(4096);
    paths.labels({"/plain/path"}).set(0.125);
    GaugeFamily& special = registry.gauge("tessera_loss_scale", "Dynamic loss scale (may overflow).", {"state"});
    special.labels({"overflow"}).set(std::numeric_limits<double>::infinity());
    special.labels({"underflow"}).set(-std::numeric_limits<double>::infinity());
    special.labels({"undefined"}).set(std::numeric_limits<double>::quiet_NaN());
    registry.gauge("tessera_temperature_celsius", "A negative gauge.").get().set(-12.75);

    HistogramFamily& latency = registry.histogram("tessera_request_duration_seconds", "Request latency.",
                                                  default_buckets(), {"route"});
    for (double v : {0.003, 0.02, 0.02, 0.4, 7.0, 30.0}) latency.labels({"/v1/completions"}).observe(v);
    latency.labels({"/health"}).observe(0.001);
    Histogram& sizes = registry.histogram("tessera_batch_size_bytes", "Batch sizes.",
                                          exponential_buckets(1e-5, 10, 8)).get();
    sizes.observe(2e-5);
    sizes.observe(5);

    std::fputs(exposition_text(registry).c_str(), stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "metrics_sample: %s\n", e.what());
    return 1;
  }
}
