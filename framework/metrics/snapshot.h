// The metrics data model: a point-in-time copy of metric families, plus the naming rules.
//
// defines: tessera::metrics::MetricType, metric_type_name, Label, SeriesSnapshot,
//          FamilySnapshot, is_valid_metric_name, is_valid_label_name, is_valid_utf8
//
// A Registry (registry.h) produces snapshots; the exposition (exposition.h) turns snapshots
// into Prometheus text. Keeping the two apart through this plain data lets other code (the
// serving router, say) render series it did not keep in a Registry, or merge several
// registries, with the same formatter.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tessera::metrics {

enum class MetricType { counter, gauge, histogram };

// "counter", "gauge", "histogram": the word used on a `# TYPE` line.
const char* metric_type_name(MetricType type);

// One label: {name, value}.
using Label = std::pair<std::string, std::string>;

// One series of a family: its labels and its value(s). Counters and gauges use `value`;
// histograms use `cumulative_counts` (one per bucket bound of the family, then one for +Inf),
// `sum` and `count`.
struct SeriesSnapshot {
  std::vector<Label> labels;
  double value = 0.0;
  std::vector<uint64_t> cumulative_counts;
  double sum = 0.0;
  uint64_t count = 0;
};

struct FamilySnapshot {
  std::string name;
  std::string help;
  MetricType type = MetricType::gauge;
  std::vector<double> bucket_bounds;  // histograms: finite upper bounds, increasing; +Inf implied
  std::vector<SeriesSnapshot> series;
};

// Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]*
bool is_valid_metric_name(std::string_view name);
// Label names: [a-zA-Z_][a-zA-Z0-9_]*, and not starting with "__" (reserved by Prometheus).
bool is_valid_label_name(std::string_view name);
// Prometheus rejects a whole scrape whose text is not UTF-8, so label values and help texts
// are checked when they enter a registry.
bool is_valid_utf8(std::string_view text);

}  // namespace tessera::metrics
