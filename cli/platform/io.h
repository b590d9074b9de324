// Small I/O helpers of the platform supervisor: files, free ports and HTTP probes. cpp-httplib
// stays in io.cc.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace driftless::cli::platform {

// The whole file. kNotFound if it does not exist, kInternal for other read errors.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes `content` to path.tmp and renames it over `path`, so readers never see half a file.
absl::Status WriteFileAtomic(const std::string& path, std::string_view content);

// mkdir -p. kInternal naming the directory on failure.
absl::Status MakeDirs(const std::string& path);

// A free TCP port on 127.0.0.1 (bound to port 0, then released). kUnavailable on failure.
absl::StatusOr<int> FreePort();

// GET `url` ("http://host:port/path?query"); returns the HTTP status. kUnavailable if no
// response arrived within `timeout` (connection refused, timeout).
absl::StatusOr<int> HttpGetStatus(const std::string& url, absl::Duration timeout);

// The last `max_lines` lines of a file ("" if unreadable), for error messages.
std::string Tail(const std::string& path, int max_lines);

}  // namespace driftless::cli::platform
