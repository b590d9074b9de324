// Structured logging for every driftless process: one JSON object per line by default,
// or a human-readable text line, written through spdlog (spdlog stays out of this header).
//
//   log::Init({.service = "renderer", .level = log::Level::kInfo, .format = log::Format::kJson});
//   log::Info("synced", {{"app", name}, {"revision", rev}, {"objects", 12}});
//   // {"ts":"2026-11-28T10:00:00.123Z","level":"info","logger":"renderer","msg":"synced",
//   //  "app":"guestbook","revision":"3f2a...","objects":12}
//
//   log::Logger poller = log::Logger("repo-poller").With({{"repo", url}});
//   poller.Warn("fetch failed", {{"error", status}});
//
// Secrets: the value of every field whose key looks sensitive (password, token, secret, key,
// authorization, privateKey, credentials, ... — see IsSensitiveKey) is written as
// "<redacted>", and user:password@ is stripped from URLs in every string value (RedactUrl).
// Messages themselves are not rewritten: never put secrets in a message.
//
// Thread-safety: all functions and Logger methods may be called from any thread; each line
// is written whole. Init() may be called again (e.g. after parsing flags) and affects
// subsequent lines.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace driftless::log {

enum class Level { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };
enum class Format { kJson, kText };

// "trace", "debug", "info", "warn" (or "warning"), "error", "off" -> Level.
// Errors: kInvalidArgument naming the text.
absl::StatusOr<Level> ParseLevel(std::string_view text);
// "json" | "text" -> Format. Errors: kInvalidArgument naming the text.
absl::StatusOr<Format> ParseFormat(std::string_view text);
// Lower-case name as written in log lines: "info", "warn", ...
std::string_view LevelName(Level level);

// One key/value pair of a log line. Constructible from strings, integers, floating point,
// bools, absl::Status (logged as its ToString()) and std::chrono durations (logged as
// integer milliseconds under the given key).
class Field {
 public:
  using Value = std::variant<std::string, int64_t, uint64_t, double, bool>;

  Field(std::string_view key, std::string_view value) : key_(key), value_(std::string(value)) {}
  Field(std::string_view key, const std::string& value) : key_(key), value_(value) {}
  Field(std::string_view key, const char* value)
      : key_(key), value_(std::string(value ? value : "")) {}
  Field(std::string_view key, bool value) : key_(key), value_(value) {}
  template <typename T,
            std::enable_if_t<
                std::is_integral_v<T> && !std::is_same_v<T, bool> && std::is_signed_v<T>, int> = 0>
  Field(std::string_view key, T value) : key_(key), value_(static_cast<int64_t>(value)) {}
  template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                                             std::is_unsigned_v<T>,
                                         int> = 0>
  Field(std::string_view key, T value) : key_(key), value_(static_cast<uint64_t>(value)) {}
  template <typename T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
  Field(std::string_view key, T value) : key_(key), value_(static_cast<double>(value)) {}
  Field(std::string_view key, const absl::Status& status) : key_(key), value_(status.ToString()) {}
  template <typename Rep, typename Period>
  Field(std::string_view key, std::chrono::duration<Rep, Period> d)
      : key_(key),
        value_(static_cast<int64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(d).count())) {}

  const std::string& key() const { return key_; }
  const Value& value() const { return value_; }

 private:
  std::string key_;
  Value value_;
};

using Fields = std::vector<Field>;

// A fully described log line; FormatLine turns it into text. Exposed for tests and for
// callers that format lines themselves.
struct Record {
  std::chrono::system_clock::time_point time;
  Level level = Level::kInfo;
  std::string_view logger;
  std::string_view message;
  const Fields* bound = nullptr;             // fields of the Logger, may be null
  std::initializer_list<Field> fields = {};  // fields at the call site
};

// Formats one line without the trailing newline. Pure; applies redaction.
//   json: {"ts":"...","level":"info","logger":"x","msg":"...","k":"v",...}
//   text: 2026-11-28T10:00:00.123Z INFO  x: msg k=v k2="with space"
std::string FormatLine(const Record& record, Format format);

// RFC 3339 UTC with milliseconds: "2026-11-28T10:00:00.123Z".
std::string FormatTimestamp(std::chrono::system_clock::time_point time);

// True for keys whose values must not be logged. Case-insensitive, ignoring '_', '-', '.';
// matches keys containing password, passwd, passphrase, secret, token, authorization,
// credential, cookie, privatekey, apikey, and keys equal to or ending in "key" (so
// "sshKey", "signing_key"; note: name object identities "object" or "resource", not "key").
bool IsSensitiveKey(std::string_view key);

// Strips userinfo from a URL ("https://user:pw@host/x" -> "https://host/x") and replaces
// values of sensitive query parameters ("?token=abc" -> "?token=<redacted>"). Strings that
// are not URLs ("scheme://...") are returned unchanged. Pure.
std::string RedactUrl(std::string_view url);

// Output settings for Init.
struct Options {
  std::string service = "driftless";  // default logger name
  Level level = Level::kInfo;
  Format format = Format::kJson;
  // Where lines go: nullptr = stderr. Not owned; must outlive logging (tests use a
  // std::ostringstream).
  std::ostream* output = nullptr;
};

// (Re)configures the process-wide sink. Thread-safe.
void Init(const Options& options);
// Convenience for main(): parses level/format strings from flags and calls Init.
// Errors: kInvalidArgument for an unknown level or format (nothing is changed then).
absl::Status Init(std::string_view service, std::string_view level, std::string_view format);

// Changes only the minimum level. Thread-safe, cheap.
void SetLevel(Level level);
Level GetLevel();
// True if a line at `level` would be written; use it to skip building expensive fields.
bool Enabled(Level level);

// Blocks until everything written so far reached the output.
void Flush();

// A named logger with optional bound fields, cheap to copy. Methods write through the
// process-wide sink configured by Init.
class Logger {
 public:
  // Uses the service name given to Init as logger name.
  Logger();
  explicit Logger(std::string_view name);

  // A copy with `fields` appended to the bound fields (written on every line).
  Logger With(std::initializer_list<Field> fields) const;

  void Log(Level level, std::string_view msg, std::initializer_list<Field> fields = {}) const;
  void Trace(std::string_view msg, std::initializer_list<Field> fields = {}) const {
    Log(Level::kTrace, msg, fields);
  }
  void Debug(std::string_view msg, std::initializer_list<Field> fields = {}) const {
    Log(Level::kDebug, msg, fields);
  }
  void Info(std::string_view msg, std::initializer_list<Field> fields = {}) const {
    Log(Level::kInfo, msg, fields);
  }
  void Warn(std::string_view msg, std::initializer_list<Field> fields = {}) const {
    Log(Level::kWarn, msg, fields);
  }
  void Error(std::string_view msg, std::initializer_list<Field> fields = {}) const {
    Log(Level::kError, msg, fields);
  }

 private:
  std::shared_ptr<const std::string> name_;  // null: the service name from Init
  std::shared_ptr<const Fields> bound_;
};

// Log through the default Logger (logger name = service name from Init).
void Trace(std::string_view msg, std::initializer_list<Field> fields = {});
void Debug(std::string_view msg, std::initializer_list<Field> fields = {});
void Info(std::string_view msg, std::initializer_list<Field> fields = {});
void Warn(std::string_view msg, std::initializer_list<Field> fields = {});
void Error(std::string_view msg, std::initializer_list<Field> fields = {});

}  // namespace driftless::log
