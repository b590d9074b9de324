// Standard Prometheus process metrics read from /proc at scrape time:
// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_start_time_seconds, process_open_fds, process_max_fds.
//
//   metrics::RegisterProcessMetrics(metrics::Registry::Default());
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/http/metrics.h"

namespace driftless::metrics {

struct ProcessStats {
  double cpu_seconds = 0;         // user + system time
  double start_time_seconds = 0;  // since the Unix epoch
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double open_fds = 0;
  double max_fds = 0;
};

// Parses the contents of /proc/<pid>/stat and the btime line of /proc/stat.
// `clock_ticks` is sysconf(_SC_CLK_TCK), `page_size` sysconf(_SC_PAGESIZE). Fills cpu, start
// time and memory fields only. Errors: kInvalidArgument for malformed input.
absl::StatusOr<ProcessStats> ParseProcStat(std::string_view pid_stat, std::string_view proc_stat,
                                           long clock_ticks, long page_size);

// Reads the stats of the calling process. Errors: kUnavailable if /proc cannot be read.
absl::StatusOr<ProcessStats> ReadProcessStats();

// Exposition text for `stats` (HELP/TYPE and one sample per metric).
std::string RenderProcessStats(const ProcessStats& stats);

// Adds a collector rendering ReadProcessStats() on every scrape (nothing if /proc fails).
// Idempotent per registry; Server calls it for the registry it serves.
void RegisterProcessMetrics(Registry& registry);

}  // namespace driftless::metrics
