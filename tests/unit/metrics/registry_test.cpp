// Metrics registry and text exposition: values, exact exposition text, escaping, float
// formatting, the checks at registration (names, labels, cardinality) and concurrent updates.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <thread>

#include "framework/core/error.h"
#include "framework/metrics/exposition.h"
#include "framework/metrics/registry.h"

namespace tessera::metrics {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(MetricsRegistryTest, ExpositionOfASmallRegistryIsExact) {
  Registry registry({.constant_labels = {{"rank", "0"}}});
  CounterFamily& tokens = registry.counter("tessera_tokens_total", "Tokens processed.", {"dtype"});
  tokens.labels({"f32"}).inc(1.5);
  tokens.labels({"bf16"}).inc(3);
  registry.gauge("tessera_queue_depth", "Requests waiting.").get().set(-2);
  Histogram& step = registry.histogram("tessera_step_seconds", "Step time.", {0.5, 1}).get();
  step.observe(0.25);
  step.observe(0.5);  // `le` is inclusive: counts in the 0.5 bucket
  step.observe(4);

  EXPECT_EQ(exposition_text(registry),
            "# HELP tessera_queue_depth Requests waiting.\n"
            "# TYPE tessera_queue_depth gauge\n"
            "tessera_queue_depth{rank=\"0\"} -2\n"
            "# HELP tessera_step_seconds Step time.\n"
            "# TYPE tessera_step_seconds histogram\n"
            "tessera_step_seconds_bucket{rank=\"0\",le=\"0.5\"} 2\n"
            "tessera_step_seconds_bucket{rank=\"0\",le=\"1\"} 2\n"
            "tessera_step_seconds_bucket{rank=\"0\",le=\"+Inf\"} 3\n"
            "tessera_step_seconds_sum{rank=\"0\"} 4.75\n"
            "tessera_step_seconds_count{rank=\"0\"} 3\n"
            "# HELP tessera_tokens_total Tokens processed.\n"
            "# TYPE tessera_tokens_total counter\n"
            "tessera_tokens_total{dtype=\"bf16\",rank=\"0\"} 3\n"
            "tessera_tokens_total{dtype=\"f32\",rank=\"0\"} 1.5\n");
}

TEST(MetricsRegistryTest, ValuesFollowUpdates) {
  Registry registry;
  Counter& counter = registry.counter("tessera_c_total", "c").get();
  counter.inc();
  counter.inc(2.5);
  EXPECT_EQ(counter.value(), 3.5);
  Gauge& gauge = registry.gauge("tessera_g", "g").get();
  gauge.set(10);
  gauge.inc(2);
  gauge.dec(5);
  EXPECT_EQ(gauge.value(), 7);
  Histogram& histogram = registry.histogram("tessera_h_bytes", "h", {1, 10, 100}).get();
  for (double v : {0.0, 1.0, 5.0, 10.0, 50.0, 1000.0}) histogram.observe(v);
  EXPECT_EQ(histogram.cumulative_counts(), (std::vector<uint64_t>{2, 4, 5, 6}));
  EXPECT_EQ(histogram.count(), 6u);
  EXPECT_EQ(histogram.sum(), 1066.0);
}

TEST(MetricsRegistryTest, HistogramSendsNaNToInfBucketOnly) {
  Registry registry;
  Histogram& histogram = registry.histogram("tessera_h", "h", {1}).get();
  histogram.observe(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(histogram.cumulative_counts(), (std::vector<uint64_t>{0, 1}));
  EXPECT_TRUE(std::isnan(histogram.sum()));
}

TEST(MetricsRegistryTest, HistogramAcceptsTrailingInfBoundAndOnlyInf) {
  Registry registry;
  HistogramFamily& with_inf =
      registry.histogram("tessera_a", "a", {1, std::numeric_limits<double>::infinity()});
  EXPECT_EQ(with_inf.bucket_bounds(), (std::vector<double>{1}));
  Histogram& only_inf = registry.histogram("tessera_b", "b", {}).get();
  only_inf.observe(7);
  EXPECT_EQ(only_inf.cumulative_counts(), (std::vector<uint64_t>{1}));
}

TEST(MetricsRegistryTest, EscapesHelpAndLabelValues) {
  Registry registry;
  registry.gauge("tessera_escaped", "Path C:\\dir\nsecond \"line\"", {"path"})
      .labels({"a\\b \"quoted\"\nnext"})
      .set(1);
  EXPECT_EQ(exposition_text(registry),
            "# HELP tessera_escaped Path C:\\\\dir\\nsecond \"line\"\n"
            "# TYPE tessera_escaped gauge\n"
            "tessera_escaped{path=\"a\\\\b \\\"quoted\\\"\\nnext\"} 1\n");
}

TEST(MetricsRegistryTest, FormatsValuesThePrometheusWay) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(-0.0), "0");
  EXPECT_EQ(format_value(1e6), "1000000");
  EXPECT_EQ(format_value(123456789012345.0), "123456789012345");
  EXPECT_EQ(format_value(-42), "-42");
  EXPECT_EQ(format_value(0.1), "0.1");
  EXPECT_EQ(format_value(2.5e-7), "2.5e-07");
  EXPECT_EQ(format_value(1e20), "1e+20");
  EXPECT_EQ(format_value(123456789012.5), "123456789012.5");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(std::stod(format_value(1.0 / 3.0)), 1.0 / 3.0);  // shortest form reads back exactly
}

TEST(MetricsRegistryTest, FamiliesAreSortedAndUnusedLabelledFamiliesLeftOut) {
  Registry registry;
  registry.gauge("tessera_b", "b");
  registry.gauge("tessera_unused", "never given label values", {"kind"});
  registry.gauge("tessera_a", "a");
  std::vector<FamilySnapshot> families = registry.collect();
  ASSERT_EQ(families.size(), 2u);
  EXPECT_EQ(families[0].name, "tessera_a");
  EXPECT_EQ(families[1].name, "tessera_b");
  EXPECT_EQ(families[0].series.at(0).value, 0.0);  // unlabelled series exist at zero
}

TEST(MetricsRegistryTest, CardinalityLimitRefusesNewSeriesWithClearError) {
  Registry registry({.max_series_per_family = 100});
  CounterFamily& family = registry.counter("tessera_requests_total", "r", {"code"}, 2);
  family.labels({"200"}).inc();
  family.labels({"404"}).inc();
  std::string error = error_of([&] { family.labels({"500"}); });
  EXPECT_TRUE(contains(error, "tessera_requests_total")) << error;
  EXPECT_TRUE(contains(error, "code=\"500\"")) << error;
  EXPECT_TRUE(contains(error, "already holds 2 series")) << error;
  EXPECT_EQ(family.labels({"200"}).value(), 1);  // existing series still work
  EXPECT_EQ(family.size(), 2u);
}

TEST(MetricsRegistryTest, RegistryDefaultLimitAppliesToFamilies) {
  Registry registry({.max_series_per_family = 1});
  GaugeFamily& family = registry.gauge("tessera_g", "g", {"k"});
  family.labels({"a"});
  EXPECT_TRUE(contains(error_of([&] { family.labels({"b"}); }), "limit"));
}

TEST(MetricsRegistryTest, InvalidNamesAreRefused) {
  Registry registry;
  EXPECT_TRUE(contains(error_of([&] { registry.gauge("1tessera", "x"); }), "not a valid Prometheus metric name"));
  EXPECT_TRUE(contains(error_of([&] { registry.gauge("tessera-loss", "x"); }), "not a valid"));
  EXPECT_TRUE(contains(error_of([&] { registry.gauge("", "x"); }), "not a valid"));
  EXPECT_TRUE(contains(error_of([&] { registry.counter("tessera_steps", "x"); }), "must end in `_total`"));
  EXPECT_TRUE(contains(error_of([&] { registry.gauge("tessera_g", "x", {"__name"}); }), "label name `__name`"));
  EXPECT_TRUE(contains(error_of([&] { registry.gauge("tessera_g", "x", {"a-b"}); }), "label name `a-b`"));
  EXPECT_TRUE(contains(error_of([&] { registry.gauge("tessera_g", "x", {"a", "a"}); }), "appears twice"));
  EXPECT_TRUE(contains(error_of([&] { registry.histogram("tessera_h", "x", {1}, {"le"}); }), "reserved"));
  EXPECT_TRUE(contains(error_of([&] { registry.gauge("tessera_g", "bad \xff utf8"); }), "not valid UTF-8"));
  EXPECT_TRUE(contains(error_of([&] { registry.set_constant_label("9rank", "0"); }), "not valid"));
  EXPECT_TRUE(registry.collect().empty());  // nothing half-registered
  EXPECT_TRUE(is_valid_metric_name("tessera:recorded_rule_total"));
  EXPECT_TRUE(is_valid_label_name("_private"));
}

TEST(MetricsRegistryTest, BadLabelValuesAreRefused) {
  Registry registry;
  GaugeFamily& family = registry.gauge("tessera_g", "g", {"dtype", "device"});
  EXPECT_TRUE(contains(error_of([&] { family.labels({"bf16"}); }), "got 1 value(s)"));
  EXPECT_TRUE(contains(error_of([&] { family.labels({"bf16", "\xc3\x28"}); }), "`device` is not valid UTF-8"));
  EXPECT_TRUE(contains(error_of([&] { family.get(); }), "labels({...})"));
  EXPECT_EQ(&family.labels({"bf16", "cuda:0"}), &family.labels({"bf16", "cuda:0"}));
}

TEST(MetricsRegistryTest, BadHistogramBoundsAreRefused) {
  Registry registry;
  EXPECT_TRUE(contains(error_of([&] { registry.histogram("tessera_h", "h", {1, 1}); }), "strictly increasing"));
  EXPECT_TRUE(contains(error_of([&] { registry.histogram("tessera_h", "h", {2, 1}); }), "strictly increasing"));
  EXPECT_TRUE(contains(error_of([&] { registry.histogram("tessera_h", "h", {std::nan(""), 1}); }), "not finite"));
}

TEST(MetricsRegistryTest, CountersOnlyGoUp) {
  Registry registry;
  Counter& counter = registry.counter("tessera_c_total", "c").get();
  counter.inc(2);
  std::string error = error_of([&] { counter.inc(-1); });
  EXPECT_TRUE(contains(error, "tessera_c_total")) << error;
  EXPECT_TRUE(contains(error, "only go up")) << error;
  EXPECT_TRUE(contains(error_of([&] { counter.inc(std::nan("")); }), "only go up"));
  EXPECT_EQ(counter.value(), 2);
}

TEST(MetricsRegistryTest, ReRegisteringReturnsTheSameFamilyOrRefusesADifferentOne) {
  Registry registry;
  CounterFamily& first = registry.counter("tessera_x_total", "x", {"k"});
  EXPECT_EQ(&registry.counter("tessera_x_total", "x", {"k"}), &first);
  EXPECT_TRUE(contains(error_of([&] { registry.counter("tessera_x_total", "x", {"j"}); }), "already registered"));
  EXPECT_TRUE(contains(error_of([&] { registry.counter("tessera_x_total", "other", {"k"}); }), "another help"));
  registry.histogram("tessera_h", "h", {1});
  EXPECT_TRUE(contains(error_of([&] { registry.histogram("tessera_h", "h", {2}); }), "other buckets"));
}

TEST(MetricsRegistryTest, SeriesNamesOfHistogramsDoNotCollide) {
  Registry registry;
  registry.histogram("tessera_latency_seconds", "h", {1});
  std::string error = error_of([&] { registry.gauge("tessera_latency_seconds_count", "g"); });
  EXPECT_TRUE(contains(error, "already writes")) << error;
  registry.gauge("tessera_size_sum", "g");
  EXPECT_TRUE(contains(error_of([&] { registry.histogram("tessera_size", "h", {1}); }), "tessera_size_sum"));
}

TEST(MetricsRegistryTest, ConstantLabelsApplyToEverySeriesAndMayNotCollide) {
  Registry registry;
  registry.gauge("tessera_g", "g", {"kind"}).labels({"a"}).set(1);
  registry.set_constant_label("rank", "3");
  registry.set_constant_label("world", "4");
  registry.set_constant_label("rank", "2");  // replaces
  EXPECT_EQ(exposition_text(registry),
            "# HELP tessera_g g\n# TYPE tessera_g gauge\ntessera_g{kind=\"a\",rank=\"2\",world=\"4\"} 1\n");
  EXPECT_TRUE(contains(error_of([&] { registry.set_constant_label("kind", "x"); }), "already a label"));
  EXPECT_TRUE(contains(error_of([&] { registry.gauge("tessera_h", "h", {"rank"}); }), "constant label"));
  EXPECT_TRUE(contains(error_of([&] { registry.set_constant_label("le", "x"); }), "reserved"));
}

TEST(MetricsRegistryTest, ConcurrentUpdatesSumExactly) {
  Registry registry;
  CounterFamily& counters = registry.counter("tessera_c_total", "c", {"thread_group"});
  Gauge& gauge = registry.gauge("tessera_g", "g").get();
  Histogram& histogram = registry.histogram("tessera_h", "h", {10, 100}).get();
  constexpr int kThreads = 8;
  constexpr int kIterations = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Every thread creates the shared series itself: creation races must yield one series.
      Counter& shared = counters.labels({"shared"});
      Counter& own = counters.labels({t % 2 ? "odd" : "even"});
      for (int i = 0; i < kIterations; ++i) {
        shared.inc();
        own.inc(2);
        gauge.inc();
        gauge.dec(0.5);
        histogram.observe(i % 3 == 0 ? 5.0 : 500.0);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(counters.size(), 3u);
  EXPECT_EQ(counters.labels({"shared"}).value(), kThreads * kIterations);
  EXPECT_EQ(counters.labels({"odd"}).value(), 2.0 * kIterations * kThreads / 2);
  EXPECT_EQ(gauge.value(), 0.5 * kThreads * kIterations);
  const uint64_t low_per_thread = (kIterations + 2) / 3;
  EXPECT_EQ(histogram.cumulative_counts(),
            (std::vector<uint64_t>{kThreads * low_per_thread, kThreads * low_per_thread,
                                   uint64_t(kThreads) * kIterations}));
  EXPECT_EQ(histogram.sum(), kThreads * (5.0 * low_per_thread + 500.0 * (kIterations - low_per_thread)));
}

TEST(MetricsRegistryTest, ProcessStartTimeIsInThePast) {
  Registry registry;
  double start = register_process_start_time(registry).get().value();
  double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(start, now + 1);       // clock ticks round the start time
  EXPECT_GT(start, now - 86400);   // this test process started less than a day ago
  EXPECT_TRUE(contains(exposition_text(registry), "# TYPE process_start_time_seconds gauge\n"));
}

TEST(MetricsRegistryTest, DefaultRegistryIsOneInstanceAndBucketHelpersWork) {
  EXPECT_EQ(&default_registry(), &default_registry());
  EXPECT_EQ(default_buckets().size(), 11u);
  EXPECT_EQ(linear_buckets(1, 2, 3), (std::vector<double>{1, 3, 5}));
  EXPECT_EQ(exponential_buckets(1, 10, 3), (std::vector<double>{1, 10, 100}));
  EXPECT_TRUE(contains(error_of([] { exponential_buckets(0, 2, 3); }), "start > 0"));
  EXPECT_TRUE(contains(error_of([] { linear_buckets(0, -1, 3); }), "width > 0"));
}

}  // namespace
}  // namespace tessera::metrics
