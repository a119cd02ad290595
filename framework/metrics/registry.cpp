// Registry, families and the three metric kinds (see registry.h for the design).
#include "framework/metrics/registry.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <type_traits>

#include "framework/core/error.h"

namespace tessera::metrics {

namespace {

double unix_time_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// Fallback for process_start_time_seconds where /proc cannot be read.
const double kLibraryLoadTime = unix_time_now();

std::string quoted_list(const std::vector<std::string>& names) {
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out + "}";
}

std::string label_text(const std::vector<Label>& labels) {
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    out += (i ? "," : "") + labels[i].first + "=\"" + labels[i].second + "\"";
  }
  return out + "}";
}

// The series names a family puts on the wire: a histogram `x` writes x_bucket, x_sum, x_count.
std::vector<std::string> series_names(const std::string& name, MetricType type) {
  if (type == MetricType::histogram) return {name + "_bucket", name + "_sum", name + "_count"};
  return {name};
}

}  // namespace

// ---- Counter, Gauge, Histogram ----

void Counter::inc(double amount) {
  TESSERA_CHECK(amount >= 0.0, "counter `", *family_name_, "`: inc(", amount,
                ") — counters only go up (use a gauge for a value that can fall)");
  value_.fetch_add(amount, std::memory_order_relaxed);
}

void Gauge::set_to_current_time() { set(unix_time_now()); }

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), bucket_counts_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) bucket_counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double value) {
  // First bound >= value is the bucket (`le` is inclusive); NaN compares false everywhere, so
  // it is sent to +Inf explicitly.
  size_t bucket = bounds_->size();
  if (!std::isnan(value)) {
    bucket = static_cast<size_t>(std::lower_bound(bounds_->begin(), bounds_->end(), value) - bounds_->begin());
  }
  bucket_counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::cumulative_counts() const {
  std::vector<uint64_t> counts(bounds_->size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    running += bucket_counts_[i].load(std::memory_order_relaxed);
    counts[i] = running;
  }
  return counts;
}

uint64_t Histogram::count() const { return cumulative_counts().back(); }

// ---- families ----

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
                       std::vector<double> bucket_bounds, size_t max_series)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)),
      bucket_bounds_(std::move(bucket_bounds)),
      max_series_(max_series) {}

std::vector<Label> FamilyBase::labels_of(const std::vector<std::string>& values) const {
  std::vector<Label> labels;
  labels.reserve(values.size());
  for (size_t i = 0; i < values.size(); ++i) labels.emplace_back(label_names_[i], values[i]);
  return labels;
}

void FamilyBase::check_new_series(const std::vector<std::string>& values, size_t existing) const {
  TESSERA_CHECK(values.size() == label_names_.size(), "metric `", name_, "` has labels ", quoted_list(label_names_),
                " but labels() got ", values.size(), " value(s) ", quoted_list(values));
  for (size_t i = 0; i < values.size(); ++i) {
    TESSERA_CHECK(is_valid_utf8(values[i]), "metric `", name_, "`: value of label `", label_names_[i],
                  "` is not valid UTF-8");
  }
  TESSERA_CHECK(existing < max_series_, "metric `", name_, "` refuses a new series ", label_text(labels_of(values)),
                ": it already holds ", existing, " series, its limit. Label values must come from a small fixed set ",
                "(never ids, paths or user input); if the set really is larger, register the family with a larger ",
                "max_series");
}

template <typename Child>
Family<Child>::Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
                      std::vector<double> bucket_bounds, size_t max_series)
    : FamilyBase(std::move(name), std::move(help), type, std::move(label_names), std::move(bucket_bounds),
                 max_series) {}

template <typename Child>
Child& Family<Child>::labels(const std::vector<std::string>& values) {
  {
    std::shared_lock lock(mutex_);
    auto it = children_.find(values);
    if (it != children_.end()) return *it->second;
  }
  std::unique_lock lock(mutex_);
  auto it = children_.find(values);  // another thread may have created it meanwhile
  if (it != children_.end()) return *it->second;
  check_new_series(values, children_.size());
  std::unique_ptr<Child> child;
  if constexpr (std::is_same_v<Child, Counter>) {
    child = std::make_unique<Counter>(&name_);
  } else if constexpr (std::is_same_v<Child, Histogram>) {
    child = std::make_unique<Histogram>(&bucket_bounds_);
  } else {
    child = std::make_unique<Child>();
  }
  Child& ref = *child;
  children_.emplace(values, std::move(child));
  return ref;
}

template <typename Child>
Child& Family<Child>::get() {
  TESSERA_CHECK(label_names_.empty(), "metric `", name_, "` has labels ", quoted_list(label_names_),
                ": pick a series with labels({...}) instead of get()");
  return labels({});
}

template <typename Child>
size_t Family<Child>::size() const {
  std::shared_lock lock(mutex_);
  return children_.size();
}

template <typename Child>
FamilySnapshot Family<Child>::collect() const {
  FamilySnapshot family{name_, help_, type_, bucket_bounds_, {}};
  std::shared_lock lock(mutex_);
  family.series.reserve(children_.size());
  for (const auto& [values, child] : children_) {
    SeriesSnapshot series;
    series.labels = labels_of(values);
    if constexpr (std::is_same_v<Child, Histogram>) {
      series.cumulative_counts = child->cumulative_counts();
      series.count = series.cumulative_counts.back();
      series.sum = child->sum();
    } else {
      series.value = child->value();
    }
    family.series.push_back(std::move(series));
  }
  return family;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ---- Registry ----

Registry::Registry(RegistryOptions options) : max_series_per_family_(options.max_series_per_family) {
  TESSERA_CHECK(max_series_per_family_ >= 1, "metrics registry: max_series_per_family must be at least 1");
  for (const auto& [name, value] : options.constant_labels) set_constant_label(name, value);
}

template <typename Child>
Family<Child>& Registry::add(const std::string& name, const std::string& help, MetricType type,
                             const std::vector<std::string>& label_names, std::vector<double> bounds,
                             std::optional<size_t> max_series) {
  const char* kind = metric_type_name(type);
  TESSERA_CHECK(is_valid_metric_name(name), kind, " name `", name,
                "` is not a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
  TESSERA_CHECK(type != MetricType::counter || (name.size() > 6 && name.ends_with("_total")), "counter name `", name,
                "` must end in `_total`");
  TESSERA_CHECK(is_valid_utf8(help), kind, " `", name, "`: help text is not valid UTF-8");
  for (size_t i = 0; i < label_names.size(); ++i) {
    const std::string& label = label_names[i];
    TESSERA_CHECK(is_valid_label_name(label), kind, " `", name, "`: label name `", label,
                  "` is not valid ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)");
    TESSERA_CHECK(type != MetricType::histogram || label != "le", "histogram `", name,
                  "`: label name `le` is reserved for bucket bounds");
    TESSERA_CHECK(std::find(label_names.begin(), label_names.begin() + i, label) == label_names.begin() + i, kind,
                  " `", name, "`: label name `", label, "` appears twice");
  }
  size_t limit = max_series.value_or(max_series_per_family_);
  TESSERA_CHECK(limit >= 1, kind, " `", name, "`: max_series must be at least 1");
  if (type == MetricType::histogram) {
    if (!bounds.empty() && std::isinf(bounds.back()) && bounds.back() > 0) bounds.pop_back();
    for (size_t i = 0; i < bounds.size(); ++i) {
      TESSERA_CHECK(std::isfinite(bounds[i]), "histogram `", name, "`: bucket bound ", bounds[i],
                    " is not finite (the +Inf bucket is implied)");
      TESSERA_CHECK(i == 0 || bounds[i] > bounds[i - 1], "histogram `", name,
                    "`: bucket bounds must be strictly increasing, got ", bounds[i - 1], " then ", bounds[i]);
    }
  }

  std::lock_guard lock(mutex_);
  for (const auto& [constant, value] : constant_labels_) {
    TESSERA_CHECK(std::find(label_names.begin(), label_names.end(), constant) == label_names.end(), kind, " `",
                  name, "`: label name `", constant, "` is already a constant label of this registry");
  }
  auto it = families_.find(name);
  if (it != families_.end()) {
    FamilyBase& old = *it->second;
    TESSERA_CHECK(old.type() == type && old.label_names() == label_names && old.bucket_bounds() == bounds &&
                      old.help() == help,
                  "metric `", name, "` is already registered as a ", metric_type_name(old.type()), " with labels ",
                  quoted_list(old.label_names()),
                  (old.help() != help ? " and another help text" : ""),
                  (old.bucket_bounds() != bounds ? " and other buckets" : ""), "; cannot register it as a ", kind,
                  " with labels ", quoted_list(label_names));
    return static_cast<Family<Child>&>(old);
  }
  for (const std::string& series : series_names(name, type)) {
    for (const auto& [other_name, other] : families_) {
      for (const std::string& other_series : series_names(other_name, other->type())) {
        TESSERA_CHECK(series != other_series, kind, " `", name, "` would write series `", series,
                      "`, which the ", metric_type_name(other->type()), " `", other_name, "` already writes");
      }
    }
  }
  auto family = std::make_unique<Family<Child>>(name, help, type, label_names, std::move(bounds), limit);
  Family<Child>& ref = *family;
  families_.emplace(name, std::move(family));
  if (label_names.empty()) ref.get();  // an unlabelled family's one series exists from the start
  return ref;
}

CounterFamily& Registry::counter(const std::string& name, const std::string& help,
                                 const std::vector<std::string>& label_names, std::optional<size_t> max_series) {
  return add<Counter>(name, help, MetricType::counter, label_names, {}, max_series);
}

GaugeFamily& Registry::gauge(const std::string& name, const std::string& help,
                             const std::vector<std::string>& label_names, std::optional<size_t> max_series) {
  return add<Gauge>(name, help, MetricType::gauge, label_names, {}, max_series);
}

HistogramFamily& Registry::histogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                                     const std::vector<std::string>& label_names,
                                     std::optional<size_t> max_series) {
  return add<Histogram>(name, help, MetricType::histogram, label_names, std::move(bounds), max_series);
}

void Registry::set_constant_label(const std::string& name, const std::string& value) {
  TESSERA_CHECK(is_valid_label_name(name), "metrics registry: constant label name `", name,
                "` is not valid ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)");
  TESSERA_CHECK(name != "le", "metrics registry: constant label name `le` is reserved for histogram buckets");
  TESSERA_CHECK(is_valid_utf8(value), "metrics registry: value of constant label `", name, "` is not valid UTF-8");
  std::lock_guard lock(mutex_);
  for (const auto& [family_name, family] : families_) {
    const auto& names = family->label_names();
    TESSERA_CHECK(std::find(names.begin(), names.end(), name) == names.end(), "metrics registry: constant label `",
                  name, "` is already a label of metric `", family_name, "`");
  }
  for (auto& label : constant_labels_) {
    if (label.first == name) {
      label.second = value;
      return;
    }
  }
  constant_labels_.emplace_back(name, value);
}

std::vector<Label> Registry::constant_labels() const {
  std::lock_guard lock(mutex_);
  return constant_labels_;
}

std::vector<FamilySnapshot> Registry::collect() const {
  std::lock_guard lock(mutex_);
  std::vector<FamilySnapshot> families;
  families.reserve(families_.size());
  for (const auto& [name, family] : families_) {
    FamilySnapshot snapshot = family->collect();
    if (snapshot.series.empty()) continue;
    for (SeriesSnapshot& series : snapshot.series) {
      series.labels.insert(series.labels.end(), constant_labels_.begin(), constant_labels_.end());
    }
    families.push_back(std::move(snapshot));
  }
  return families;
}

Registry& default_registry() {
  static Registry registry;
  return registry;
}

namespace {

// Process start from /proc: field 22 of /proc/self/stat (clock ticks after boot) plus the boot
// time (`btime` in /proc/stat). Field 2 (the command) may hold spaces and parentheses, so fields
// are counted from the last ')'.
std::optional<double> process_start_from_proc() {
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  for (int index = 3; index <= 22 && (fields >> field); ++index) {
    if (index != 22) continue;
    std::ifstream boot_file("/proc/stat");
    std::string line;
    while (std::getline(boot_file, line)) {
      if (!line.starts_with("btime ")) continue;
      long ticks_per_second = sysconf(_SC_CLK_TCK);
      if (ticks_per_second <= 0) return std::nullopt;
      double boot = std::stod(line.substr(6));
      return boot + std::stod(field) / static_cast<double>(ticks_per_second);
    }
  }
  return std::nullopt;
}

}  // namespace

GaugeFamily& register_process_start_time(Registry& registry) {
  GaugeFamily& family =
      registry.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.");
  std::optional<double> start;
  try {
    start = process_start_from_proc();
  } catch (const std::exception&) {
    start.reset();  // unparsable /proc: fall back below
  }
  family.get().set(start.value_or(kLibraryLoadTime));
  return family;
}

std::vector<double> default_buckets() { return {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}; }

std::vector<double> linear_buckets(double start, double width, size_t count) {
  TESSERA_CHECK(width > 0 && count >= 1 && std::isfinite(start) && std::isfinite(width),
                "linear_buckets(start=", start, ", width=", width, ", count=", count,
                "): need finite start, width > 0 and count >= 1");
  std::vector<double> bounds(count);
  for (size_t i = 0; i < count; ++i) bounds[i] = start + width * static_cast<double>(i);
  return bounds;
}

std::vector<double> exponential_buckets(double start, double factor, size_t count) {
  TESSERA_CHECK(start > 0 && factor > 1 && count >= 1 && std::isfinite(start) && std::isfinite(factor),
                "exponential_buckets(start=", start, ", factor=", factor, ", count=", count,
                "): need start > 0, factor > 1 and count >= 1");
  std::vector<double> bounds(count);
  double bound = start;
  for (size_t i = 0; i < count; ++i, bound *= factor) bounds[i] = bound;
  return bounds;
}

}  // namespace tessera::metrics
