#include "common/http/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <vector>

namespace driftless::metrics {
namespace {

bool ReadFile(const char* path, std::string* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

bool ParseDouble(std::string_view s, double* out) {
  std::string copy(s);
  char* end = nullptr;
  *out = std::strtod(copy.c_str(), &end);
  return end != copy.c_str() && *end == '\0';
}

void AppendMetric(std::string* out, std::string_view name, std::string_view type,
                  std::string_view help, double v) {
  out->append("# HELP ").append(name).append(" ").append(help).append("\n");
  out->append("# TYPE ").append(name).append(" ").append(type).append("\n");
  out->append(name).append(" ").append(FormatValue(v)).append("\n");
}

}  // namespace

absl::StatusOr<ProcessStats> ParseProcStat(std::string_view pid_stat, std::string_view proc_stat,
                                           long clock_ticks, long page_size) {
  // The command name (field 2) is in parentheses and may contain spaces and ')'.
  const size_t close = pid_stat.rfind(')');
  if (close == std::string_view::npos) {
    return absl::InvalidArgumentError("/proc/self/stat: no ')' after the command name");
  }
  std::vector<std::string_view> fields;  // fields[0] is field 3 (state)
  std::string_view rest = pid_stat.substr(close + 1);
  while (!rest.empty()) {
    const size_t start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const size_t end = rest.find_first_of(" \n");
    fields.push_back(rest.substr(0, end));
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end);
  }
  auto field = [&](int n, double* v) { return ParseDouble(fields[n - 3], v); };
  if (fields.size() < 22) {
    return absl::InvalidArgumentError("/proc/self/stat: only " + std::to_string(fields.size()) +
                                      " fields after the command name");
  }
  double utime, stime, starttime, vsize, rss;
  if (!field(14, &utime) || !field(15, &stime) || !field(22, &starttime) || !field(23, &vsize) ||
      !field(24, &rss)) {
    return absl::InvalidArgumentError("/proc/self/stat: non-numeric time or memory field");
  }
  double btime = -1;
  std::string_view ps = proc_stat;
  while (!ps.empty()) {
    const size_t nl = ps.find('\n');
    std::string_view line = ps.substr(0, nl);
    if (line.rfind("btime ", 0) == 0 && !ParseDouble(line.substr(6), &btime)) btime = -1;
    if (nl == std::string_view::npos) break;
    ps.remove_prefix(nl + 1);
  }
  if (btime < 0) return absl::InvalidArgumentError("/proc/stat: no btime line");
  if (clock_ticks <= 0 || page_size <= 0) {
    return absl::InvalidArgumentError("clock ticks and page size must be positive");
  }
  ProcessStats s;
  s.cpu_seconds = (utime + stime) / static_cast<double>(clock_ticks);
  s.start_time_seconds = btime + starttime / static_cast<double>(clock_ticks);
  s.virtual_bytes = vsize;
  s.resident_bytes = rss * static_cast<double>(page_size);
  return s;
}

absl::StatusOr<ProcessStats> ReadProcessStats() {
  std::string pid_stat, proc_stat;
  if (!ReadFile("/proc/self/stat", &pid_stat) || !ReadFile("/proc/stat", &proc_stat)) {
    return absl::UnavailableError("cannot read /proc/self/stat or /proc/stat");
  }
  absl::StatusOr<ProcessStats> s =
      ParseProcStat(pid_stat, proc_stat, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE));
  if (!s.ok()) return s;
  if (DIR* dir = opendir("/proc/self/fd")) {
    int n = 0;
    while (const dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') ++n;
    }
    closedir(dir);
    s->open_fds = n - 1;  // minus the descriptor opendir itself holds
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) s->max_fds = static_cast<double>(rl.rlim_cur);
  return s;
}

std::string RenderProcessStats(const ProcessStats& stats) {
  std::string out;
  AppendMetric(&out, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.", stats.cpu_seconds);
  AppendMetric(&out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
               stats.max_fds);
  AppendMetric(&out, "process_open_fds", "gauge", "Number of open file descriptors.",
               stats.open_fds);
  AppendMetric(&out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
               stats.resident_bytes);
  AppendMetric(&out, "process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.", stats.start_time_seconds);
  AppendMetric(&out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
               stats.virtual_bytes);
  return out;
}

void RegisterProcessMetrics(Registry& registry) {
  static std::mutex mu;
  static auto* registered = new std::set<const Registry*>;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!registered->insert(&registry).second) return;
  }
  registry.AddCollector([](std::string* out) {
    absl::StatusOr<ProcessStats> s = ReadProcessStats();
    if (s.ok()) *out += RenderProcessStats(*s);
  });
}

}  // namespace driftless::metrics
