#include "common/log/log.h"

#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <ctime>
#include <mutex>
#include <string>

namespace driftless::log {
namespace {

constexpr std::string_view kRedacted = "<redacted>";

char ToLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Appends `s` to `out` as the inside of a JSON string: escapes quotes, backslashes and
// control characters, and replaces invalid UTF-8 with U+FFFD so every line stays valid JSON.
void AppendJsonEscaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // Multi-byte sequence: validate length, continuation bytes, overlongs and surrogates.
    size_t len = 0;
    uint32_t cp = 0;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    }
    bool valid = len != 0 && i + len <= s.size();
    for (size_t k = 1; valid && k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) {
        valid = false;
      } else {
        cp = (cp << 6) | (cc & 0x3f);
      }
    }
    if (valid) {
      static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      valid = cp >= kMin[len] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
    }
    if (valid) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
}

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  AppendJsonEscaped(out, s);
  out += '"';
}

void AppendDouble(std::string& out, double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec == std::errc()) out.append(buf, end);
}

bool NeedsQuotesInText(std::string_view s) {
  if (s.empty()) return true;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || c == '"' || c == '=' || c == '\\' || u == 0x7f) return true;
  }
  return false;
}

// Appends a field value. JSON: strings quoted, numbers and bools bare (non-finite doubles
// become strings). Text: like JSON, but strings are only quoted when needed.
void AppendValue(std::string& out, const Field& field, Format format) {
  if (IsSensitiveKey(field.key())) {
    if (format == Format::kJson) {
      AppendJsonString(out, kRedacted);
    } else {
      out += kRedacted;
    }
    return;
  }
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          const std::string redacted =
              v.find("://") != std::string::npos ? RedactUrl(v) : std::string();
          const std::string_view s = redacted.empty() ? std::string_view(v) : redacted;
          if (format == Format::kJson || NeedsQuotesInText(s)) {
            AppendJsonString(out, s);
          } else {
            out += s;
          }
        } else if constexpr (std::is_same_v<T, bool>) {
          out += v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, double>) {
          if (std::isfinite(v)) {
            AppendDouble(out, v);
          } else {
            const char* s = std::isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf");
            if (format == Format::kJson) {
              AppendJsonString(out, s);
            } else {
              out += s;
            }
          }
        } else {
          out += std::to_string(v);
        }
      },
      field.value());
}

void AppendField(std::string& out, const Field& field, Format format) {
  if (format == Format::kJson) {
    out += ',';
    AppendJsonString(out, field.key());
    out += ':';
  } else {
    out += ' ';
    if (NeedsQuotesInText(field.key())) {
      AppendJsonString(out, field.key());
    } else {
      out += field.key();
    }
    out += '=';
  }
  AppendValue(out, field, format);
}

// Redacts one URL that starts at `url` (scheme://...) and ends at the first delimiter.
std::string RedactOneUrl(std::string_view url) {
  std::string out;
  const size_t sep = url.find("://");
  out.append(url.substr(0, sep + 3));
  std::string_view rest = url.substr(sep + 3);
  const size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  const size_t at = authority.rfind('@');
  if (at != std::string_view::npos) authority.remove_prefix(at + 1);
  out.append(authority);
  if (authority_end == std::string_view::npos) return out;
  rest.remove_prefix(authority_end);
  const size_t q = rest.find('?');
  if (q == std::string_view::npos) {
    out.append(rest);
    return out;
  }
  out.append(rest.substr(0, q + 1));
  rest.remove_prefix(q + 1);
  const size_t hash = rest.find('#');
  std::string_view query = rest.substr(0, hash);
  std::string_view fragment = hash == std::string_view::npos ? "" : rest.substr(hash);
  bool first = true;
  while (true) {
    const size_t amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    if (!first) out += '&';
    first = false;
    const size_t eq = param.find('=');
    if (eq != std::string_view::npos && IsSensitiveKey(param.substr(0, eq))) {
      out.append(param.substr(0, eq + 1));
      out.append(kRedacted);
    } else {
      out.append(param);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  out.append(fragment);
  return out;
}

bool IsSchemeChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '-' || c == '.';
}

// ---- process-wide sink -------------------------------------------------------------------

struct Sink {
  std::shared_ptr<spdlog::logger> logger;
  Format format = Format::kJson;
  std::string service = "driftless";
};

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

std::mutex& SinkMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}

std::shared_ptr<const Sink>& CurrentSinkLocked() {
  static auto* sink = new std::shared_ptr<const Sink>;
  return *sink;
}

std::shared_ptr<spdlog::logger> MakeSpdLogger(std::ostream* output) {
  spdlog::sink_ptr sink;
  if (output != nullptr) {
    sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*output, /*force_flush=*/true);
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  }
  auto logger = std::make_shared<spdlog::logger>("driftless", std::move(sink));
  logger->set_pattern("%v");  // lines are fully formatted by FormatLine
  logger->set_level(spdlog::level::trace);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

std::shared_ptr<const Sink> GetSink() {
  std::lock_guard<std::mutex> lock(SinkMutex());
  std::shared_ptr<const Sink>& sink = CurrentSinkLocked();
  if (sink == nullptr) {
    auto fresh = std::make_shared<Sink>();
    fresh->logger = MakeSpdLogger(nullptr);
    sink = std::move(fresh);
  }
  return sink;
}

spdlog::level::level_enum ToSpd(Level level) {
  switch (level) {
    case Level::kTrace:
      return spdlog::level::trace;
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
    case Level::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

void Write(Level level, const std::string* name, const Fields* bound, std::string_view msg,
           std::initializer_list<Field> fields) {
  if (!Enabled(level)) return;
  std::shared_ptr<const Sink> sink = GetSink();
  Record record;
  record.time = std::chrono::system_clock::now();
  record.level = level;
  record.logger = name != nullptr ? std::string_view(*name) : std::string_view(sink->service);
  record.message = msg;
  record.bound = bound;
  record.fields = fields;
  const std::string line = FormatLine(record, sink->format);
  sink->logger->log(ToSpd(level), spdlog::string_view_t(line.data(), line.size()));
}

}  // namespace

absl::StatusOr<Level> ParseLevel(std::string_view text) {
  std::string lower;
  for (char c : text) lower += ToLower(c);
  if (lower == "trace") return Level::kTrace;
  if (lower == "debug") return Level::kDebug;
  if (lower == "info") return Level::kInfo;
  if (lower == "warn" || lower == "warning") return Level::kWarn;
  if (lower == "error") return Level::kError;
  if (lower == "off") return Level::kOff;
  return absl::InvalidArgumentError("unknown log level \"" + std::string(text) +
                                    "\" (want trace, debug, info, warn, error, off)");
}

absl::StatusOr<Format> ParseFormat(std::string_view text) {
  if (text == "json") return Format::kJson;
  if (text == "text") return Format::kText;
  return absl::InvalidArgumentError("unknown log format \"" + std::string(text) +
                                    "\" (want json or text)");
}

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kTrace:
      return "trace";
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
    case Level::kOff:
      return "off";
  }
  return "info";
}

std::string FormatTimestamp(std::chrono::system_clock::time_point time) {
  const auto ms_since_epoch =
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  int64_t secs = ms_since_epoch / 1000;
  int64_t ms = ms_since_epoch % 1000;
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

std::string FormatLine(const Record& record, Format format) {
  std::string out;
  out.reserve(128 + record.message.size());
  if (format == Format::kJson) {
    out += "{\"ts\":\"";
    out += FormatTimestamp(record.time);
    out += "\",\"level\":\"";
    out += LevelName(record.level);
    out += "\",\"logger\":";
    AppendJsonString(out, record.logger);
    out += ",\"msg\":";
    AppendJsonString(out, record.message);
  } else {
    out += FormatTimestamp(record.time);
    out += ' ';
    std::string level(LevelName(record.level));
    for (char& c : level) c = static_cast<char>(c - 'a' + 'A');
    level.resize(5, ' ');
    out += level;
    out += ' ';
    out += record.logger;
    out += ": ";
    // The message is free text; escape control characters so one record stays one line.
    for (char c : record.message) {
      if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else {
        out += c;
      }
    }
  }
  if (record.bound != nullptr) {
    for (const Field& f : *record.bound) AppendField(out, f, format);
  }
  for (const Field& f : record.fields) AppendField(out, f, format);
  if (format == Format::kJson) out += '}';
  return out;
}

bool IsSensitiveKey(std::string_view key) {
  std::string k;
  k.reserve(key.size());
  for (char c : key) {
    if (c == '_' || c == '-' || c == '.' || c == ' ') continue;
    k += ToLower(c);
  }
  static constexpr std::string_view kWords[] = {
      "password",   "passwd", "passphrase", "secret", "token",     "authorization",
      "credential", "cookie", "privatekey", "apikey", "signature",
  };
  for (std::string_view w : kWords) {
    if (k.find(w) != std::string::npos) return true;
  }
  return k.size() >= 3 && k.compare(k.size() - 3, 3, "key") == 0;
}

std::string RedactUrl(std::string_view text) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t sep = text.find("://", pos);
    if (sep == std::string_view::npos) break;
    size_t start = sep;
    while (start > pos && IsSchemeChar(text[start - 1])) --start;
    size_t end = sep + 3;
    while (end < text.size()) {
      const char c = text[end];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\'' || c == '<' ||
          c == '>' || c == '`') {
        break;
      }
      ++end;
    }
    out.append(text.substr(pos, start - pos));
    if (start == sep) {
      // "://" without a scheme: not a URL.
      out.append(text.substr(sep, end - sep));
    } else {
      out.append(RedactOneUrl(text.substr(start, end - start)));
    }
    pos = end;
  }
  out.append(text.substr(pos));
  return out;
}

void Init(const Options& options) {
  auto sink = std::make_shared<Sink>();
  sink->logger = MakeSpdLogger(options.output);
  sink->format = options.format;
  sink->service = options.service;
  std::shared_ptr<const Sink> old;
  {
    std::lock_guard<std::mutex> lock(SinkMutex());
    old = std::move(CurrentSinkLocked());
    CurrentSinkLocked() = std::move(sink);
  }
  if (old != nullptr) old->logger->flush();
  SetLevel(options.level);
}

absl::Status Init(std::string_view service, std::string_view level, std::string_view format) {
  absl::StatusOr<Level> l = ParseLevel(level);
  if (!l.ok()) return l.status();
  absl::StatusOr<Format> f = ParseFormat(format);
  if (!f.ok()) return f.status();
  Init(Options{.service = std::string(service), .level = *l, .format = *f});
  return absl::OkStatus();
}

void SetLevel(Level level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

Level GetLevel() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }

bool Enabled(Level level) {
  return level != Level::kOff && static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void Flush() { GetSink()->logger->flush(); }

Logger::Logger() = default;

Logger::Logger(std::string_view name) : name_(std::make_shared<const std::string>(name)) {}

Logger Logger::With(std::initializer_list<Field> fields) const {
  Logger copy = *this;
  auto merged = std::make_shared<Fields>();
  if (bound_ != nullptr) *merged = *bound_;
  merged->insert(merged->end(), fields.begin(), fields.end());
  copy.bound_ = std::move(merged);
  return copy;
}

void Logger::Log(Level level, std::string_view msg, std::initializer_list<Field> fields) const {
  Write(level, name_.get(), bound_.get(), msg, fields);
}

void Trace(std::string_view msg, std::initializer_list<Field> fields) {
  Write(Level::kTrace, nullptr, nullptr, msg, fields);
}
void Debug(std::string_view msg, std::initializer_list<Field> fields) {
  Write(Level::kDebug, nullptr, nullptr, msg, fields);
}
void Info(std::string_view msg, std::initializer_list<Field> fields) {
  Write(Level::kInfo, nullptr, nullptr, msg, fields);
}
void Warn(std::string_view msg, std::initializer_list<Field> fields) {
  Write(Level::kWarn, nullptr, nullptr, msg, fields);
}
void Error(std::string_view msg, std::initializer_list<Field> fields) {
  Write(Level::kError, nullptr, nullptr, msg, fields);
}

}  // namespace driftless::log
