// Sending one webhook POST. An interface so the notifier shell can be tested without HTTP;
// CurlWebhookSender (libcurl stays in its .cc) is the real one.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace driftless::notifier {

class WebhookSender {
 public:
  virtual ~WebhookSender() = default;
  // POSTs `body` to `url` with `headers`; returns the HTTP status of the response (any
  // status, including 4xx/5xx). Errors when no response arrived: kDeadlineExceeded (timeout),
  // kUnavailable (connection refused, DNS, TLS, reset), kInvalidArgument (malformed or
  // unsupported URL). Error messages never contain the URL's userinfo or query.
  // Thread-safe.
  virtual absl::StatusOr<int> Post(const std::string& url, std::string_view body,
                                   const std::map<std::string, std::string>& headers,
                                   absl::Duration timeout) = 0;
};

// libcurl, one easy handle per request (no redirects followed: a 3xx is a rejection).
class CurlWebhookSender : public WebhookSender {
 public:
  CurlWebhookSender();  // curl_global_init once per process
  absl::StatusOr<int> Post(const std::string& url, std::string_view body,
                           const std::map<std::string, std::string>& headers,
                           absl::Duration timeout) override;
};

}  // namespace driftless::notifier
