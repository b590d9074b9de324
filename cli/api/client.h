// The `driftless` CLI's connection to driftless-api: one gRPC channel, every call with a
// deadline, gRPC errors turned into absl::Status (same code). An error the API answered keeps
// its message (it names what failed on the server, e.g. a NATS call that timed out); only a
// failure to reach the server, or the call deadline passing, names the server address. List
// calls follow pages. grpcpp stays in client.cc.
//
//   DL_ASSIGN_OR_RETURN(auto client, ApiClient::Connect(ResolveServerAddress(flag)));
//   DL_ASSIGN_OR_RETURN(v1::Application app, client->Get("guestbook"));
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "driftless/v1/api.pb.h"

namespace driftless::cli {

namespace v1 = ::driftless::v1;

inline constexpr char kDefaultServer[] = "127.0.0.1:7070";

// The server to talk to: `flag` if set, else $DRIFTLESS_SERVER, else the "api" entry of
// $DRIFTLESS_STATE_DIR/endpoints.json (written by `driftless up`; a "host:port" string or an
// object with a "grpc" member), else kDefaultServer.
std::string ResolveServerAddress(std::string_view flag);

// The "api" address in an endpoints.json document; empty if absent or malformed.
std::string ApiAddressFromEndpoints(std::string_view endpoints_json);

class ApiClient {
 public:
  // Creates the channel (connection is lazy: errors show on the first call). Every call
  // carries "authorization: Bearer $DRIFTLESS_TOKEN" when that variable is set.
  static std::unique_ptr<ApiClient> Connect(const std::string& address,
                                            absl::Duration call_timeout = absl::Seconds(15));
  ~ApiClient();

  const std::string& address() const;

  // Each call returns the server's status code and message. When the server could not be
  // reached (no answer from driftless-api itself: transport errors), kUnavailable says
  // "cannot reach driftless-api at 127.0.0.1:7070: ..."; when the call deadline passed,
  // kDeadlineExceeded says "driftless-api at 127.0.0.1:7070 did not answer within 15s".
  absl::StatusOr<v1::ApplyResponse> Apply(const std::string& yaml, bool dry_run);
  absl::StatusOr<v1::Application> Get(const std::string& name);
  // Every matching application, in name order, following next_page_token with pages of
  // `page_size` (0: the server's default). A page the server answered kUnavailable for (NATS
  // was slow or down: transient by contract) is asked again, up to kPageAttempts times in
  // all. Each page has its own call deadline.
  absl::StatusOr<std::vector<v1::Application>> List(const std::string& project,
                                                    const std::string& name_pattern,
                                                    int page_size = 0);
  // One page, as the server answered it (no retries).
  absl::StatusOr<v1::ListApplicationsResponse> ListPage(const v1::ListApplicationsRequest& request);
  static constexpr int kPageAttempts = 3;
  absl::Status Delete(const std::string& name, bool cascade);
  absl::StatusOr<std::string> Sync(const v1::SyncApplicationRequest& request);
  absl::StatusOr<std::vector<v1::Resource>> ListResources(const std::string& kind);
  absl::StatusOr<std::vector<v1::SyncHistoryEntry>> ListHistory(const std::string& name);
  absl::StatusOr<v1::RollbackResponse> Rollback(const v1::RollbackRequest& request);
  absl::StatusOr<v1::SuspendResponse> Suspend(const std::string& name, bool suspended);
  absl::StatusOr<v1::DiffReply> Diff(const std::string& name);

  // Every dead letter from `start_sequence` on (0: the oldest), oldest first, following pages
  // of `page_size` (0: the server's default) and retrying pages like List.
  absl::StatusOr<std::vector<v1::DeadLetter>> ListDeadLetters(uint64_t start_sequence,
                                                              int page_size = 0);
  // Republishes the dead letter at `sequence` to its original subject and removes it from
  // the DLQ. kNotFound if there is none; kFailedPrecondition if it names no subject.
  absl::StatusOr<v1::RedriveDeadLetterResponse> RedriveDeadLetter(uint64_t sequence);

  // The notifier's delivery log, newest first (see ListDeliveriesRequest).
  absl::StatusOr<std::vector<v1::Delivery>> ListDeliveries(
      const v1::ListDeliveriesRequest& request);

  // Streams events to `sink` (called on this thread) until it returns false, the server ends
  // the stream, or, with a non-zero `idle`, no event arrived for that long (how a non-follow
  // `driftless events` knows it has seen the stored ones). Returns OK in those cases; the
  // stream has no call deadline.
  absl::Status WatchEvents(const v1::WatchEventsRequest& request,
                           const std::function<bool(const v1::Event&)>& sink, absl::Duration idle);

  struct Impl;

 private:
  explicit ApiClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace driftless::cli
