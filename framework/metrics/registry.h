// Registry: Tessera's Prometheus metrics — counters, gauges and histograms in labelled families.
//
// defines: tessera::metrics::Counter, Gauge, Histogram, Family, CounterFamily, GaugeFamily,
//          HistogramFamily, RegistryOptions, Registry, default_registry,
//          register_process_start_time, default_buckets, linear_buckets, exponential_buckets
//
// A family is one metric name with a fixed list of label names; each tuple of label values is
// one series (a child): `registry.counter("tessera_tokens_total", "...", {"dtype"})
// .labels({"bf16"}).inc(n)`. Families without labels have exactly one series, `family.get()`,
// which exists (at zero) from registration on.
//
// The hot path is the child: `inc`, `set`, `observe` are a few relaxed atomic operations and
// take no lock, and a child's address never changes, so code that updates a series often looks
// it up once (`Counter& c = family.labels({"bf16"});`) and keeps the reference. `labels()` takes a
// shared lock and builds a key, fine per step but not per element.
//
// Everything is checked when it enters a registry, so exposition never has to refuse anything:
// names ([a-zA-Z_:][a-zA-Z0-9_:]*; counters must end in `_total`), label names, UTF-8 help and
// label values, and the number of series per family (bounded cardinality: a family refuses a
// new label-value tuple beyond its limit). Constant labels (rank, world, ...) are added to every
// series of a registry when it is collected. Families live as long as their registry.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "framework/metrics/snapshot.h"

namespace tessera::metrics {

// A value that only goes up (requests served, tokens generated). Name ends in `_total`.
class Counter {
 public:
  explicit Counter(const std::string* family_name) : family_name_(family_name) {}
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Adds `amount` (>= 0; a negative or NaN amount is an error: counters only go up).
  void inc(double amount = 1.0);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
  const std::string* family_name_;  // for error messages; owned by the family
};

// A value that goes up and down (queue depth, loss scale, bytes in use).
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void set(double value) { value_.store(value, std::memory_order_relaxed); }
  void inc(double amount = 1.0) { value_.fetch_add(amount, std::memory_order_relaxed); }
  void dec(double amount = 1.0) { value_.fetch_sub(amount, std::memory_order_relaxed); }
  // Seconds since the Unix epoch, as a float.
  void set_to_current_time();
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted into buckets by upper bound (`le`), plus their sum and count.
// Buckets are stored per bucket and made cumulative when collected; the count is the sum of the
// buckets, so `_count` always equals the +Inf bucket. A NaN observation lands in +Inf only.
class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void observe(double value);

  // Cumulative counts: one per bound, then +Inf.
  std::vector<uint64_t> cumulative_counts() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  uint64_t count() const;

 private:
  const std::vector<double>* bounds_;  // owned by the family
  std::unique_ptr<std::atomic<uint64_t>[]> bucket_counts_;  // bounds.size() + 1 (last = +Inf)
  std::atomic<double> sum_{0.0};
};

// Shared part of a family: name, help, type, label names, series limit.
class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
             std::vector<double> bucket_bounds, size_t max_series);
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  const std::vector<double>& bucket_bounds() const { return bucket_bounds_; }
  size_t max_series() const { return max_series_; }

  // The family's series (without the registry's constant labels), sorted by label values.
  virtual FamilySnapshot collect() const = 0;

 protected:
  // Checks a label-value tuple for a new series: arity, UTF-8, the series limit.
  void check_new_series(const std::vector<std::string>& values, size_t existing) const;
  std::vector<Label> labels_of(const std::vector<std::string>& values) const;

  std::string name_;
  std::string help_;
  MetricType type_;
  std::vector<std::string> label_names_;
  std::vector<double> bucket_bounds_;
  size_t max_series_;
};

// A family of series of one kind (Counter, Gauge or Histogram).
template <typename Child>
class Family : public FamilyBase {
 public:
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
         std::vector<double> bucket_bounds, size_t max_series);

  // The series for these label values (one per label name, in order), created at zero on first
  // use. Refuses (tessera::Error) a wrong number of values, values that are not UTF-8, and a new
  // tuple once the family holds max_series() series.
  Child& labels(const std::vector<std::string>& values);
  // The one series of a family without labels.
  Child& get();
  size_t size() const;

  FamilySnapshot collect() const override;

 private:
  mutable std::shared_mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Child>> children_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;
extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

struct RegistryOptions {
  // Added to every series of the registry (after the series' own labels), e.g. {"rank", "0"}.
  std::vector<Label> constant_labels;
  // Series limit of a family that does not give its own.
  size_t max_series_per_family = 256;
};

class Registry {
 public:
  explicit Registry(RegistryOptions options = {});
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Register a family, or return the one already registered under this name if it has the same
  // type, help, label names (and bucket bounds); anything else under that name is an error.
  // `max_series` overrides RegistryOptions::max_series_per_family for this family.
  CounterFamily& counter(const std::string& name, const std::string& help,
                         const std::vector<std::string>& label_names = {},
                         std::optional<size_t> max_series = std::nullopt);
  GaugeFamily& gauge(const std::string& name, const std::string& help,
                     const std::vector<std::string>& label_names = {},
                     std::optional<size_t> max_series = std::nullopt);
  // `bounds`: finite, strictly increasing upper bounds (a trailing +Inf is accepted and dropped;
  // the +Inf bucket is always there).
  HistogramFamily& histogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                             const std::vector<std::string>& label_names = {},
                             std::optional<size_t> max_series = std::nullopt);

  // Adds or replaces a constant label (e.g. the rank, known only after MPI starts). Its name may
  // not be a label name of any family, and vice versa.
  void set_constant_label(const std::string& name, const std::string& value);
  std::vector<Label> constant_labels() const;

  // Every family, sorted by name, with the constant labels appended to every series; families
  // with no series yet (labelled families never used) are left out.
  std::vector<FamilySnapshot> collect() const;

 private:
  template <typename Child>
  Family<Child>& add(const std::string& name, const std::string& help, MetricType type,
                     const std::vector<std::string>& label_names, std::vector<double> bounds,
                     std::optional<size_t> max_series);

  mutable std::mutex mutex_;
  std::vector<Label> constant_labels_;
  size_t max_series_per_family_;
  std::map<std::string, std::unique_ptr<FamilyBase>> families_;
};

// The process-wide registry that /metrics endpoints of Tessera programs serve.
Registry& default_registry();

// Registers `process_start_time_seconds` (gauge, Unix time the process started, read from
// /proc; the time this library was loaded where /proc is unavailable) and returns it.
GaugeFamily& register_process_start_time(Registry& registry = default_registry());

// Prometheus client defaults for latencies in seconds: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10.
std::vector<double> default_buckets();
// start, start + width, ..., `count` bounds.
std::vector<double> linear_buckets(double start, double width, size_t count);
// start, start * factor, ..., `count` bounds (start > 0, factor > 1).
std::vector<double> exponential_buckets(double start, double factor, size_t count);

}  // namespace tessera::metrics
