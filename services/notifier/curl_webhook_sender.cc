#include <curl/curl.h>

#include <mutex>

#include "common/strings/str.h"
#include "services/notifier/notify.h"
#include "services/notifier/webhook_sender.h"

namespace driftless::notifier {
namespace {

size_t Discard(char* /*ptr*/, size_t size, size_t nmemb, void* /*userdata*/) {
  return size * nmemb;
}

}  // namespace

CurlWebhookSender::CurlWebhookSender() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

absl::StatusOr<int> CurlWebhookSender::Post(const std::string& url, std::string_view body,
                                            const std::map<std::string, std::string>& headers,
                                            absl::Duration timeout) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return absl::ResourceExhaustedError("curl_easy_init failed");
  curl_slist* list = nullptr;
  for (const auto& [k, v] : headers)
    list = curl_slist_append(list, strings::Cat(k, ": ", v).c_str());
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(list,
                                                                          curl_slist_free_all);
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, header_list.get());
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_USERAGENT, "driftless-notifier");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, Discard);
  CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    // curl_easy_strerror never contains the URL; the URL in the message is redacted.
    std::string what = strings::Cat("POST ", UrlForLog(url), ": ", curl_easy_strerror(rc));
    switch (rc) {
      case CURLE_OPERATION_TIMEDOUT:
        return absl::DeadlineExceededError(what);
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
        return absl::InvalidArgumentError(what);
      default:
        return absl::UnavailableError(what);
    }
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  return static_cast<int>(status);
}

}  // namespace driftless::notifier
