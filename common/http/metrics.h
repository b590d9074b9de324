// A small Prometheus metrics registry: counters, gauges and histograms, optionally with
// labels, rendered in the text exposition format 0.0.4 (served by Server at /metrics).
// Lightweight on purpose (no HTTP, no I/O) so core code can count things:
//
//   metrics::Counter& syncs = metrics::Registry::Default().AddCounter(
//       "driftless_syncs_total", "Sync operations started.");
//   syncs.Increment();
//
//   auto& by_result = metrics::Registry::Default().AddCounterFamily(
//       "driftless_sync_results_total", "Finished syncs by result.", {"app", "result"});
//   metrics::Counter& ok = by_result.WithLabels({"guestbook", "ok"});   // cache this
//   ok.Increment();
//
//   auto& latency = registry.AddHistogram("driftless_render_seconds", "Render time.",
//                                         metrics::ExponentialBuckets(0.01, 2, 10));
//   latency.Observe(0.123);
//
// Cost and thread-safety: Counter/Gauge/Histogram updates are lock-free atomic operations.
// Registering a metric and WithLabels() take a mutex; the returned references stay valid for
// the lifetime of the registry, so hot paths look them up once and keep the reference.
// All methods are thread-safe.
//
// Misuse is a programming error and aborts with a message naming the metric: invalid metric
// or label names, registering the same name with a different type or label names, or calling
// WithLabels() with the wrong number of values. Registering the same name again with the same
// type and labels returns the existing metric (help text of the first registration is kept).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace driftless::metrics {

// A monotonically increasing value (Prometheus type "counter"). Names should end in _total.
class Counter {
 public:
  // Adds `v`; negative or NaN values are ignored (counters never go down).
  void Increment(double v = 1.0) {
    if (v >= 0) value_.fetch_add(v, std::memory_order_relaxed);
  }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down (Prometheus type "gauge").
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  void Increment() { Add(1.0); }
  void Decrement() { Add(-1.0); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted into buckets with fixed upper bounds (Prometheus type "histogram").
class Histogram {
 public:
  // `bounds` are the finite upper bounds; they are sorted and de-duplicated, +Inf is implied.
  explicit Histogram(std::vector<double> bounds);

  void Observe(double v);

  struct Snapshot {
    std::vector<double> bounds;        // finite upper bounds
    std::vector<uint64_t> cumulative;  // bounds.size() + 1 entries, last is +Inf == count
    double sum = 0;
    uint64_t count = 0;
  };
  // A copy of the current state. Concurrent Observe() calls may be partly included; the
  // snapshot is still internally consistent (count equals the +Inf bucket).
  Snapshot Snap() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative
  std::atomic<double> sum_{0.0};
};

// Bucket helpers. DefaultBuckets() are Prometheus' defaults (5ms .. 10s).
std::vector<double> DefaultBuckets();
// start, start*factor, ... (count values). Requires start > 0, factor > 1, count >= 1.
std::vector<double> ExponentialBuckets(double start, double factor, int count);
// start, start+width, ... (count values). Requires width > 0, count >= 1.
std::vector<double> LinearBuckets(double start, double width, int count);

enum class Type { kCounter, kGauge, kHistogram };

// Untyped part of a metric family, used by the registry to render.
class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, Type type, std::vector<std::string> labels)
      : name_(std::move(name)), help_(std::move(help)), type_(type), labels_(std::move(labels)) {}
  virtual ~FamilyBase() = default;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  Type type() const { return type_; }
  const std::vector<std::string>& label_names() const { return labels_; }

  // Appends the HELP and TYPE lines and all samples in exposition format.
  virtual void Render(std::string* out) const = 0;

 private:
  const std::string name_;
  const std::string help_;
  const Type type_;
  const std::vector<std::string> labels_;
};

// All series of one metric name, keyed by label values. T is Counter, Gauge or Histogram.
template <typename T>
class Family : public FamilyBase {
 public:
  Family(std::string name, std::string help, Type type, std::vector<std::string> labels,
         std::function<std::unique_ptr<T>()> make)
      : FamilyBase(std::move(name), std::move(help), type, std::move(labels)),
        make_(std::move(make)) {}

  // The series for these label values (in the order of the label names), created on first
  // use. The reference is valid for the lifetime of the registry. Takes a mutex: cache it.
  T& WithLabels(const std::vector<std::string>& values);
  T& WithLabels(std::initializer_list<std::string_view> values) {
    return WithLabels(std::vector<std::string>(values.begin(), values.end()));
  }

  void Render(std::string* out) const override;

 private:
  std::function<std::unique_ptr<T>()> make_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> series_;  // guarded by mu_
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

// Owns metric families and renders them. Usually the process-wide Default() instance; tests
// create their own.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The process-wide registry (never destroyed).
  static Registry& Default();

  Counter& AddCounter(std::string_view name, std::string_view help);
  Family<Counter>& AddCounterFamily(std::string_view name, std::string_view help,
                                    std::vector<std::string> label_names);
  Gauge& AddGauge(std::string_view name, std::string_view help);
  Family<Gauge>& AddGaugeFamily(std::string_view name, std::string_view help,
                                std::vector<std::string> label_names);
  Histogram& AddHistogram(std::string_view name, std::string_view help,
                          std::vector<double> bounds = DefaultBuckets());
  Family<Histogram>& AddHistogramFamily(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> bounds = DefaultBuckets());

  // Adds a function called on every Render() that appends complete exposition text
  // (HELP/TYPE and samples) for metrics computed at scrape time, e.g. process metrics.
  // It runs on the scraping thread without the registry lock held.
  void AddCollector(std::function<void(std::string* out)> collector);

  // The text exposition format 0.0.4: families sorted by name, series sorted by label
  // values, then collector output.
  std::string Render() const;

 private:
  template <typename T>
  Family<T>& AddFamily(std::string_view name, std::string_view help, Type type,
                       std::vector<std::string> label_names,
                       std::function<std::unique_ptr<T>()> make);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<FamilyBase>, std::less<>> families_;  // guarded
  std::vector<std::function<void(std::string*)>> collectors_;                 // guarded
};

// Exposition helpers, exposed for collectors and tests.
// A sample value: shortest round-trip decimal, "+Inf", "-Inf" or "NaN".
std::string FormatValue(double v);
// Escapes a label value: backslash, double quote and newline.
std::string EscapeLabelValue(std::string_view v);
// Escapes HELP text: backslash and newline.
std::string EscapeHelp(std::string_view v);

}  // namespace driftless::metrics
