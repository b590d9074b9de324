#include "common/http/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace driftless::metrics {
namespace {

[[noreturn]] void Die(std::string_view metric, std::string_view what) {
  std::fprintf(stderr, "metrics: %.*s: %.*s\n", static_cast<int>(metric.size()), metric.data(),
               static_cast<int>(what.size()), what.data());
  std::abort();
}

bool IsValidName(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (digit && i > 0))) return false;
  }
  return true;
}

std::string_view TypeName(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// Appends `{a="x",b="y"` (no closing brace) or nothing when there are no labels;
// returns whether a brace was opened.
bool AppendLabels(std::string* out, const std::vector<std::string>& names,
                  const std::vector<std::string>& values) {
  if (names.empty()) return false;
  *out += '{';
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) *out += ',';
    *out += names[i];
    *out += "=\"";
    *out += EscapeLabelValue(values[i]);
    *out += '"';
  }
  return true;
}

void AppendSample(std::string* out, std::string_view name, std::string_view suffix,
                  const std::vector<std::string>& names, const std::vector<std::string>& values,
                  std::string_view extra_label, std::string_view extra_value, double v) {
  out->append(name);
  out->append(suffix);
  bool open = AppendLabels(out, names, values);
  if (!extra_label.empty()) {
    *out += open ? ',' : '{';
    open = true;
    out->append(extra_label);
    *out += "=\"";
    out->append(extra_value);
    *out += '"';
  }
  if (open) *out += '}';
  *out += ' ';
  *out += FormatValue(v);
  *out += '\n';
}

void RenderSeries(std::string* out, const FamilyBase& f, const std::vector<std::string>& values,
                  const Counter& c) {
  AppendSample(out, f.name(), "", f.label_names(), values, "", "", c.Value());
}

void RenderSeries(std::string* out, const FamilyBase& f, const std::vector<std::string>& values,
                  const Gauge& g) {
  AppendSample(out, f.name(), "", f.label_names(), values, "", "", g.Value());
}

void RenderSeries(std::string* out, const FamilyBase& f, const std::vector<std::string>& values,
                  const Histogram& h) {
  const Histogram::Snapshot s = h.Snap();
  for (size_t i = 0; i < s.cumulative.size(); ++i) {
    const std::string le = i < s.bounds.size() ? FormatValue(s.bounds[i]) : "+Inf";
    AppendSample(out, f.name(), "_bucket", f.label_names(), values, "le", le,
                 static_cast<double>(s.cumulative[i]));
  }
  AppendSample(out, f.name(), "_sum", f.label_names(), values, "", "", s.sum);
  AppendSample(out, f.name(), "_count", f.label_names(), values, "", "",
               static_cast<double>(s.count));
}

}  // namespace

// ---- Histogram ---------------------------------------------------------------------------

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  bounds_.erase(
      std::remove_if(bounds_.begin(), bounds_.end(), [](double b) { return !std::isfinite(b); }),
      bounds_.end());
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  counts_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  // First bound >= v: Prometheus buckets are "less than or equal". NaN lands in +Inf.
  const size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Snap() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> DefaultBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  if (!(start > 0) || !(factor > 1) || count < 1) Die("ExponentialBuckets", "invalid arguments");
  std::vector<double> out;
  double v = start;
  for (int i = 0; i < count; ++i, v *= factor) out.push_back(v);
  return out;
}

std::vector<double> LinearBuckets(double start, double width, int count) {
  if (!(width > 0) || count < 1) Die("LinearBuckets", "invalid arguments");
  std::vector<double> out;
  for (int i = 0; i < count; ++i) out.push_back(start + width * i);
  return out;
}

// ---- Family ------------------------------------------------------------------------------

template <typename T>
T& Family<T>::WithLabels(const std::vector<std::string>& values) {
  if (values.size() != label_names().size()) {
    Die(name(), "WithLabels got " + std::to_string(values.size()) + " values for " +
                    std::to_string(label_names().size()) + " labels");
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = series_.find(values);
  if (it == series_.end()) it = series_.emplace(values, make_()).first;
  return *it->second;
}

template <typename T>
void Family<T>::Render(std::string* out) const {
  if (!help().empty()) {
    *out += "# HELP " + name() + " " + EscapeHelp(help()) + "\n";
  }
  *out += "# TYPE " + name() + " ";
  out->append(TypeName(type()));
  *out += '\n';
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, series] : series_) RenderSeries(out, *this, values, *series);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ---- Registry ----------------------------------------------------------------------------

Registry& Registry::Default() {
  static Registry* registry = new Registry;
  return *registry;
}

template <typename T>
Family<T>& Registry::AddFamily(std::string_view name, std::string_view help, Type type,
                               std::vector<std::string> label_names,
                               std::function<std::unique_ptr<T>()> make) {
  if (!IsValidName(name, /*allow_colon=*/true)) Die(name, "invalid metric name");
  for (const std::string& l : label_names) {
    if (!IsValidName(l, /*allow_colon=*/false) || l.rfind("__", 0) == 0 ||
        (type == Type::kHistogram && l == "le")) {
      Die(name, "invalid label name \"" + l + "\"");
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = families_.find(name);
  if (it != families_.end()) {
    if (it->second->type() != type || it->second->label_names() != label_names) {
      Die(name, "registered twice with a different type or label names");
    }
    return static_cast<Family<T>&>(*it->second);
  }
  auto family = std::make_unique<Family<T>>(std::string(name), std::string(help), type,
                                            std::move(label_names), std::move(make));
  Family<T>& ref = *family;
  families_.emplace(std::string(name), std::move(family));
  return ref;
}

Family<Counter>& Registry::AddCounterFamily(std::string_view name, std::string_view help,
                                            std::vector<std::string> label_names) {
  return AddFamily<Counter>(name, help, Type::kCounter, std::move(label_names),
                            [] { return std::make_unique<Counter>(); });
}

Counter& Registry::AddCounter(std::string_view name, std::string_view help) {
  return AddCounterFamily(name, help, {}).WithLabels(std::vector<std::string>{});
}

Family<Gauge>& Registry::AddGaugeFamily(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names) {
  return AddFamily<Gauge>(name, help, Type::kGauge, std::move(label_names),
                          [] { return std::make_unique<Gauge>(); });
}

Gauge& Registry::AddGauge(std::string_view name, std::string_view help) {
  return AddGaugeFamily(name, help, {}).WithLabels(std::vector<std::string>{});
}

Family<Histogram>& Registry::AddHistogramFamily(std::string_view name, std::string_view help,
                                                std::vector<std::string> label_names,
                                                std::vector<double> bounds) {
  return AddFamily<Histogram>(
      name, help, Type::kHistogram, std::move(label_names),
      [bounds = std::move(bounds)] { return std::make_unique<Histogram>(bounds); });
}

Histogram& Registry::AddHistogram(std::string_view name, std::string_view help,
                                  std::vector<double> bounds) {
  return AddHistogramFamily(name, help, {}, std::move(bounds))
      .WithLabels(std::vector<std::string>{});
}

void Registry::AddCollector(std::function<void(std::string* out)> collector) {
  std::lock_guard<std::mutex> lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string Registry::Render() const {
  std::string out;
  std::vector<std::function<void(std::string*)>> collectors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, family] : families_) family->Render(&out);
    collectors = collectors_;
  }
  for (const auto& c : collectors) c(&out);
  return out;
}

// ---- exposition helpers ------------------------------------------------------------------

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return "NaN";
  return std::string(buf, end);
}

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
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

std::string EscapeHelp(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
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

}  // namespace driftless::metrics
