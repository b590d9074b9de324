#include "common/http/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

namespace driftless::metrics {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, GoldenTextFormat) {
  Registry r;
  r.AddCounter("driftless_syncs_total", "Syncs started.").Increment(3);
  auto& results = r.AddCounterFamily("driftless_sync_results_total", "Finished syncs by result.",
                                     {"app", "result"});
  results.WithLabels({"guestbook", "ok"}).Increment();
  results.WithLabels({"guestbook", "ok"}).Increment();
  results.WithLabels({"a\"b\\c\nd", "failed"}).Increment(0.5);
  r.AddGauge("driftless_apps", "Applications known.\nSecond \\ line.").Set(-2.25);
  auto& latency =
      r.AddHistogramFamily("driftless_render_seconds", "Render time.", {"app"}, {0.1, 1, 0.5});
  Histogram& h = latency.WithLabels({"guestbook"});
  h.Observe(0.05);
  h.Observe(0.1);  // le is inclusive
  h.Observe(0.7);
  h.Observe(30);
  r.AddHistogram("driftless_empty_seconds", "", {1});

  EXPECT_EQ(r.Render(),
            "# HELP driftless_apps Applications known.\\nSecond \\\\ line.\n"
            "# TYPE driftless_apps gauge\n"
            "driftless_apps -2.25\n"
            "# TYPE driftless_empty_seconds histogram\n"
            "driftless_empty_seconds_bucket{le=\"1\"} 0\n"
            "driftless_empty_seconds_bucket{le=\"+Inf\"} 0\n"
            "driftless_empty_seconds_sum 0\n"
            "driftless_empty_seconds_count 0\n"
            "# HELP driftless_render_seconds Render time.\n"
            "# TYPE driftless_render_seconds histogram\n"
            "driftless_render_seconds_bucket{app=\"guestbook\",le=\"0.1\"} 2\n"
            "driftless_render_seconds_bucket{app=\"guestbook\",le=\"0.5\"} 2\n"
            "driftless_render_seconds_bucket{app=\"guestbook\",le=\"1\"} 3\n"
            "driftless_render_seconds_bucket{app=\"guestbook\",le=\"+Inf\"} 4\n"
            "driftless_render_seconds_sum{app=\"guestbook\"} 30.85\n"
            "driftless_render_seconds_count{app=\"guestbook\"} 4\n"
            "# HELP driftless_sync_results_total Finished syncs by result.\n"
            "# TYPE driftless_sync_results_total counter\n"
            "driftless_sync_results_total{app=\"a\\\"b\\\\c\\nd\",result=\"failed\"} 0.5\n"
            "driftless_sync_results_total{app=\"guestbook\",result=\"ok\"} 2\n"
            "# HELP driftless_syncs_total Syncs started.\n"
            "# TYPE driftless_syncs_total counter\n"
            "driftless_syncs_total 3\n");
}

TEST(MetricsTest, HistogramSumAndCountCarryLabels) {
  Registry r;
  r.AddHistogramFamily("x_seconds", "h", {"app"}, {1}).WithLabels({"a"}).Observe(2);
  const std::string text = r.Render();
  EXPECT_THAT(text, HasSubstr("x_seconds_sum{app=\"a\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("x_seconds_count{app=\"a\"} 1\n"));
}

TEST(MetricsTest, SameRegistrationReturnsSameMetric) {
  Registry r;
  Counter& a = r.AddCounter("c_total", "first");
  Counter& b = r.AddCounter("c_total", "second");
  EXPECT_EQ(&a, &b);
  auto& fa = r.AddGaugeFamily("g", "h", {"x"});
  auto& fb = r.AddGaugeFamily("g", "h", {"x"});
  EXPECT_EQ(&fa, &fb);
  EXPECT_EQ(&fa.WithLabels({"1"}), &fb.WithLabels({"1"}));
}

TEST(MetricsTest, CounterIgnoresNegative) {
  Counter c;
  c.Increment(2);
  c.Increment(-5);
  EXPECT_EQ(c.Value(), 2);
}

TEST(MetricsTest, GaugeOps) {
  Gauge g;
  g.Set(10);
  g.Increment();
  g.Decrement();
  g.Decrement();
  g.Add(0.5);
  EXPECT_EQ(g.Value(), 9.5);
}

TEST(MetricsTest, FormatValue) {
  EXPECT_EQ(FormatValue(1), "1");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(1e21), "1e+21");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(MetricsTest, Buckets) {
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(LinearBuckets(0, 5, 3), (std::vector<double>{0, 5, 10}));
  EXPECT_EQ(DefaultBuckets().size(), 11u);
}

TEST(MetricsTest, ConcurrentIncrementsAreNotLost) {
  Registry r;
  Counter& c = r.AddCounter("hits_total", "h");
  auto& fam = r.AddCounterFamily("by_thread_total", "h", {"t"});
  Histogram& h = r.AddHistogram("obs", "h", {0.5});
  Gauge& g = r.AddGauge("inflight", "h");
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Counter& mine = fam.WithLabels({std::to_string(t % 2)});
      for (int i = 0; i < kPerThread; ++i) {
        c.Increment();
        mine.Increment();
        h.Observe(i % 2 == 0 ? 0.25 : 1.0);
        g.Increment();
        g.Decrement();
      }
    });
  }
  // Rendering concurrently with updates must be safe (checked under TSan/ASan builds).
  for (int i = 0; i < 20; ++i) EXPECT_THAT(r.Render(), HasSubstr("hits_total"));
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(c.Value(), kThreads * kPerThread);
  EXPECT_EQ(fam.WithLabels({"0"}).Value() + fam.WithLabels({"1"}).Value(), kThreads * kPerThread);
  Histogram::Snapshot s = h.Snap();
  EXPECT_EQ(s.count, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(s.cumulative[0], static_cast<uint64_t>(kThreads * kPerThread / 2));
  EXPECT_EQ(s.sum, kThreads * kPerThread / 2 * 1.25);
  EXPECT_EQ(g.Value(), 0);
}

TEST(MetricsDeathTest, MisuseAbortsWithMetricName) {
  Registry r;
  r.AddCounter("dup_total", "h");
  EXPECT_DEATH(r.AddGauge("dup_total", "h"), "dup_total.*different type");
  EXPECT_DEATH(r.AddCounter("bad-name", "h"), "bad-name.*invalid metric name");
  EXPECT_DEATH(r.AddCounterFamily("ok_total", "h", {"le gal"}), "invalid label name");
  auto& fam = r.AddCounterFamily("two_total", "h", {"a", "b"});
  EXPECT_DEATH(fam.WithLabels({"only-one"}), "two_total.*1 values for 2 labels");
}

}  // namespace
}  // namespace driftless::metrics
