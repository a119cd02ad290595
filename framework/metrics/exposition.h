// Exposition: metric snapshots as Prometheus text format 0.0.4 (what `GET /metrics` returns).
//
// defines: tessera::metrics::kTextContentType, format_text, exposition_text, format_value,
//          escape_help, escape_label_value
//
// Per family, sorted by name: `# HELP name text` (backslash and newline escaped), `# TYPE name
// kind`, then one line per series, `name{label="value",...} value` (label values escape
// backslash, double quote and newline). A histogram series writes its buckets in increasing `le`
// order ending with `le="+Inf"`, then `_sum`, then `_count`. Values: integers in plain digits
// (no exponent up to 1e15), other numbers in the shortest form that reads back exactly, and
// `+Inf`, `-Inf`, `NaN`. No timestamps: Prometheus stamps samples when it scrapes.
//
// Any HTTP server can serve a registry with
//   body = exposition_text(registry); content type kTextContentType.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "framework/metrics/snapshot.h"

namespace tessera::metrics {

class Registry;

inline constexpr const char* kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

// Families in name order (the input order does not matter), series in the given order.
std::string format_text(const std::vector<FamilySnapshot>& families);
// format_text(registry.collect()).
std::string exposition_text(const Registry& registry);

std::string format_value(double value);
std::string escape_help(std::string_view help);
std::string escape_label_value(std::string_view value);

}  // namespace tessera::metrics
