// Prometheus text format 0.0.4 writer (see exposition.h).
#include "framework/metrics/exposition.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>

#include "framework/metrics/registry.h"

namespace tessera::metrics {

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Integral values below 1e15 print as plain digits (to_chars' shortest form would write
  // 1e+06 for a million); -0 prints as 0.
  if (value == std::trunc(value) && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<int64_t>(value));
  }
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);  // shortest round-trip form
  return std::string(buffer, result.ptr);
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

// `{a="x",b="y"}` (or nothing without labels), with an optional trailing `le`.
void append_labels(std::string& out, const std::vector<Label>& labels, const std::string* le = nullptr) {
  if (labels.empty() && le == nullptr) return;
  out += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    out += escape_label_value(value);
    out += '"';
  }
  if (le != nullptr) {
    if (!first) out += ',';
    out += "le=\"";
    out += *le;
    out += '"';
  }
  out += '}';
}

void append_sample(std::string& out, const std::string& name, const std::vector<Label>& labels, const std::string& value,
                   const std::string* le = nullptr) {
  out += name;
  append_labels(out, labels, le);
  out += ' ';
  out += value;
  out += '\n';
}

}  // namespace

std::string format_text(const std::vector<FamilySnapshot>& families) {
  std::vector<const FamilySnapshot*> order;
  order.reserve(families.size());
  for (const FamilySnapshot& family : families) order.push_back(&family);
  std::stable_sort(order.begin(), order.end(),
                   [](const FamilySnapshot* a, const FamilySnapshot* b) { return a->name < b->name; });

  std::string out;
  for (const FamilySnapshot* family : order) {
    const std::string& name = family->name;
    out += "# HELP " + name + ' ' + escape_help(family->help) + '\n';
    out += "# TYPE " + name + ' ' + metric_type_name(family->type) + '\n';
    if (family->type != MetricType::histogram) {
      for (const SeriesSnapshot& series : family->series) append_sample(out, name, series.labels, format_value(series.value));
      continue;
    }
    std::vector<std::string> le;
    le.reserve(family->bucket_bounds.size() + 1);
    for (double bound : family->bucket_bounds) le.push_back(format_value(bound));
    le.push_back("+Inf");
    const std::string bucket = name + "_bucket";
    for (const SeriesSnapshot& series : family->series) {
      for (size_t i = 0; i < le.size() && i < series.cumulative_counts.size(); ++i) {
        append_sample(out, bucket, series.labels, std::to_string(series.cumulative_counts[i]), &le[i]);
      }
      append_sample(out, name + "_sum", series.labels, format_value(series.sum));
      append_sample(out, name + "_count", series.labels, std::to_string(series.count));
    }
  }
  return out;
}

std::string exposition_text(const Registry& registry) { return format_text(registry.collect()); }

}  // namespace tessera::metrics
