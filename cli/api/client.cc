#include "cli/api/client.h"

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/time/clock.h"
#include "common/manifest/manifest.h"
#include "common/strings/str.h"
#include "driftless/v1/api.grpc.pb.h"

namespace driftless::cli {
namespace {

// Trailing metadata driftless-api puts on every error it answers itself (services/api/
// grpc_server.h): without it, an error came from the transport (or the client's deadline).
constexpr char kErrorOriginKey[] = "driftless-error-origin";

bool AnsweredByApi(const grpc::ClientContext& context) {
  const auto& trailers = context.GetServerTrailingMetadata();
  return trailers.find(kErrorOriginKey) != trailers.end();
}

}  // namespace

struct ApiClient::Impl {
  std::string address;
  absl::Duration timeout;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::ApplicationService::Stub> stub;
  std::string token;

  void Prepare(grpc::ClientContext& context, bool deadline = true) const {
    if (deadline) {
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
    }
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  }

  // The server's own answers keep their message: it names what failed over there (a KV
  // timeout is driftless-api's UNAVAILABLE, not a connection problem of this client).
  absl::Status ToStatus(const grpc::Status& s, const grpc::ClientContext& context) const {
    if (s.ok()) return absl::OkStatus();
    auto code = static_cast<absl::StatusCode>(s.error_code());
    if (AnsweredByApi(context)) return absl::Status(code, s.error_message());
    if (code == absl::StatusCode::kUnavailable) {
      return absl::Status(
          code, strings::Cat("cannot reach driftless-api at ", address, ": ", s.error_message()));
    }
    if (code == absl::StatusCode::kDeadlineExceeded) {
      return absl::Status(code,
                          strings::Cat("driftless-api at ", address, " did not answer within ",
                                       absl::FormatDuration(timeout), ": ", s.error_message()));
    }
    return absl::Status(code, s.error_message());
  }

  // Calls `call` (one unary RPC with a fresh context) until it succeeds, fails otherwise than
  // with the server's kUnavailable, or ran kPageAttempts times; paced 0.5 s, 1 s.
  template <typename Call>
  absl::Status WithPageRetries(const Call& call) const {
    absl::Duration pause = absl::Milliseconds(500);
    for (int attempt = 1;; ++attempt) {
      grpc::ClientContext context;
      Prepare(context);
      grpc::Status s = call(context);
      absl::Status status = ToStatus(s, context);
      if (status.ok() || !absl::IsUnavailable(status) || !AnsweredByApi(context) ||
          attempt >= ApiClient::kPageAttempts) {
        return status;
      }
      absl::SleepFor(pause);  // retry pacing
      pause *= 2;
    }
  }
};

std::string ApiAddressFromEndpoints(std::string_view endpoints_json) {
  manifest::Json json = manifest::Json::parse(endpoints_json, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return "";
  auto it = json.find("api");
  if (it == json.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto grpc = it->find("grpc");
    if (grpc != it->end() && grpc->is_string()) return grpc->get<std::string>();
  }
  return "";
}

std::string ResolveServerAddress(std::string_view flag) {
  if (!flag.empty()) return std::string(flag);
  if (const char* env = std::getenv("DRIFTLESS_SERVER"); env != nullptr && *env != '\0') {
    return env;
  }
  if (const char* dir = std::getenv("DRIFTLESS_STATE_DIR"); dir != nullptr && *dir != '\0') {
    std::ifstream in(strings::Cat(dir, "/endpoints.json"));
    if (in) {
      std::stringstream text;
      text << in.rdbuf();
      std::string address = ApiAddressFromEndpoints(text.str());
      if (!address.empty()) return address;
    }
  }
  return kDefaultServer;
}

ApiClient::ApiClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ApiClient::~ApiClient() = default;

std::unique_ptr<ApiClient> ApiClient::Connect(const std::string& address,
                                              absl::Duration call_timeout) {
  auto impl = std::make_unique<Impl>();
  impl->address = address;
  impl->timeout = call_timeout;
  if (const char* token = std::getenv("DRIFTLESS_TOKEN"); token != nullptr) impl->token = token;
  impl->channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  impl->stub = v1::ApplicationService::NewStub(impl->channel);
  return std::unique_ptr<ApiClient>(new ApiClient(std::move(impl)));
}

const std::string& ApiClient::address() const { return impl_->address; }

absl::StatusOr<v1::ApplyResponse> ApiClient::Apply(const std::string& yaml, bool dry_run) {
  grpc::ClientContext context;
  impl_->Prepare(context);
  v1::ApplyRequest request;
  request.set_yaml(yaml);
  request.set_dry_run(dry_run);
  v1::ApplyResponse response;
  absl::Status s = impl_->ToStatus(impl_->stub->Apply(&context, request, &response), context);
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<v1::Application> ApiClient::Get(const std::string& name) {
  grpc::ClientContext context;
  impl_->Prepare(context);
  v1::GetApplicationRequest request;
  request.set_name(name);
  v1::Application response;
  absl::Status s = impl_->ToStatus(impl_->stub->Get(&context, request, &response), context);
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<v1::ListApplicationsResponse> ApiClient::ListPage(
    const v1::ListApplicationsRequest& request) {
  grpc::ClientContext context;
  impl_->Prepare(context);
  v1::ListApplicationsResponse response;
  absl::Status s = impl_->ToStatus(impl_->stub->List(&context, request, &response), context);
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<std::vector<v1::Application>> ApiClient::List(const std::string& project,
                                                             const std::string& name_pattern,
                                                             int page_size) {
  v1::ListApplicationsRequest request;
  request.set_project(project);
  request.set_name_pattern(name_pattern);
  request.set_limit(page_size);
  std::vector<v1::Application> all;
  while (true) {
    v1::ListApplicationsResponse response;
    absl::Status s = impl_->WithPageRetries([&](grpc::ClientContext& context) {
      response.Clear();
      return impl_->stub->List(&context, request, &response);
    });
    if (!s.ok()) return s;
    for (v1::Application& app : *response.mutable_applications()) all.push_back(std::move(app));
    if (response.next_page_token().empty()) return all;
    request.set_page_token(response.next_page_token());
  }
}

absl::Status ApiClient::Delete(const std::string& name, bool cascade) {
  grpc::ClientContext context;
  impl_->Prepare(context);
  v1::DeleteApplicationRequest request;
  request.set_name(name);
  request.set_cascade(cascade);
  v1::DeleteApplicationResponse response;
  return impl_->ToStatus(impl_->stub->Delete(&context, request, &response), context);
}

absl::StatusOr<std::string> ApiClient::Sync(const v1::SyncApplicationRequest& request) {
  grpc::ClientContext context;
  impl_->Prepare(context);
  v1::SyncApplicationResponse response;
  absl::Status s = impl_->ToStatus(impl_->stub->Sync(&context, request, &response), context);
  if (!s.ok()) return s;
  return response.sync_id();
}

absl::StatusOr<std::vector<v1::SyncHistoryEntry>> ApiClient::ListHistory(const std::string& name) {
  v1::ListHistoryRequest request;
  request.set_name(name);
  v1::ListHistoryResponse response;
  absl::Status s = impl_->WithPageRetries([&](grpc::ClientContext& context) {
    response.Clear();
    return impl_->stub->ListHistory(&context, request, &response);
  });
  if (!s.ok()) return s;
  return std::vector<v1::SyncHistoryEntry>(
      std::make_move_iterator(response.mutable_entries()->begin()),
      std::make_move_iterator(response.mutable_entries()->end()));
}

absl::StatusOr<v1::RollbackResponse> ApiClient::Rollback(const v1::RollbackRequest& request) {
  grpc::ClientContext context;
  impl_->Prepare(context);
  v1::RollbackResponse response;
  absl::Status s = impl_->ToStatus(impl_->stub->Rollback(&context, request, &response), context);
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<v1::SuspendResponse> ApiClient::Suspend(const std::string& name, bool suspended) {
  grpc::ClientContext context;
  impl_->Prepare(context);
  v1::SuspendRequest request;
  request.set_name(name);
  request.set_suspended(suspended);
  v1::SuspendResponse response;
  absl::Status s = impl_->ToStatus(impl_->stub->Suspend(&context, request, &response), context);
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<v1::DiffReply> ApiClient::Diff(const std::string& name) {
  grpc::ClientContext context;
  impl_->Prepare(context);
  v1::DiffRequest request;
  request.set_application(name);
  v1::DiffReply response;
  absl::Status s = impl_->ToStatus(impl_->stub->Diff(&context, request, &response), context);
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<std::vector<v1::Resource>> ApiClient::ListResources(const std::string& kind) {
  grpc::ClientContext context;
  impl_->Prepare(context);
  v1::ListResourcesRequest request;
  request.set_kind(kind);
  v1::ListResourcesResponse response;
  absl::Status s =
      impl_->ToStatus(impl_->stub->ListResources(&context, request, &response), context);
  if (!s.ok()) return s;
  return std::vector<v1::Resource>(response.resources().begin(), response.resources().end());
}

absl::StatusOr<std::vector<v1::DeadLetter>> ApiClient::ListDeadLetters(uint64_t start_sequence,
                                                                       int page_size) {
  v1::ListDeadLettersRequest request;
  request.set_start_sequence(start_sequence);
  request.set_limit(page_size);
  std::vector<v1::DeadLetter> all;
  while (true) {
    v1::ListDeadLettersResponse response;
    absl::Status s = impl_->WithPageRetries([&](grpc::ClientContext& context) {
      response.Clear();
      return impl_->stub->ListDeadLetters(&context, request, &response);
    });
    if (!s.ok()) return s;
    for (v1::DeadLetter& letter : *response.mutable_dead_letters()) {
      all.push_back(std::move(letter));
    }
    if (response.next_page_token().empty()) return all;
    request.set_page_token(response.next_page_token());
  }
}

absl::StatusOr<v1::RedriveDeadLetterResponse> ApiClient::RedriveDeadLetter(uint64_t sequence) {
  grpc::ClientContext context;
  impl_->Prepare(context);
  v1::RedriveDeadLetterRequest request;
  request.set_sequence(sequence);
  v1::RedriveDeadLetterResponse response;
  absl::Status s =
      impl_->ToStatus(impl_->stub->RedriveDeadLetter(&context, request, &response), context);
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<std::vector<v1::Delivery>> ApiClient::ListDeliveries(
    const v1::ListDeliveriesRequest& request) {
  v1::ListDeliveriesResponse response;
  absl::Status s = impl_->WithPageRetries([&](grpc::ClientContext& context) {
    response.Clear();
    return impl_->stub->ListDeliveries(&context, request, &response);
  });
  if (!s.ok()) return s;
  return std::vector<v1::Delivery>(std::make_move_iterator(response.mutable_deliveries()->begin()),
                                   std::make_move_iterator(response.mutable_deliveries()->end()));
}

absl::Status ApiClient::WatchEvents(const v1::WatchEventsRequest& request,
                                    const std::function<bool(const v1::Event&)>& sink,
                                    absl::Duration idle) {
  grpc::ClientContext context;
  impl_->Prepare(context, /*deadline=*/false);
  std::unique_ptr<grpc::ClientReader<v1::Event>> reader =
      impl_->stub->WatchEvents(&context, request);

  // Read() blocks, so the idle limit is a watchdog that cancels the call.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool idle_cancelled = false;
  auto last_event = std::chrono::steady_clock::now();
  std::thread watchdog;
  if (idle > absl::ZeroDuration()) {
    auto limit = std::chrono::milliseconds(absl::ToInt64Milliseconds(idle));
    watchdog = std::thread([&, limit] {
      std::unique_lock<std::mutex> lock(mu);
      while (!done) {
        auto until = last_event + limit;
        if (std::chrono::steady_clock::now() >= until) {
          idle_cancelled = true;
          context.TryCancel();
          return;
        }
        cv.wait_until(lock, until);
      }
    });
  }
  bool stopped_by_sink = false;
  v1::Event event;
  while (reader->Read(&event)) {
    {
      std::lock_guard<std::mutex> lock(mu);
      last_event = std::chrono::steady_clock::now();
    }
    if (!sink(event)) {
      stopped_by_sink = true;
      context.TryCancel();
      break;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  if (watchdog.joinable()) watchdog.join();
  grpc::Status status = reader->Finish();
  if (stopped_by_sink || idle_cancelled) return absl::OkStatus();
  return impl_->ToStatus(status, context);
}

}  // namespace driftless::cli
