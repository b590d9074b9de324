#include "cli/api/client.h"

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/manifest/manifest.h"
#include "common/strings/str.h"
#include "driftless/v1/api.grpc.pb.h"

namespace driftless::cli {

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

  absl::Status ToStatus(const grpc::Status& s) const {
    if (s.ok()) return absl::OkStatus();
    auto code = static_cast<absl::StatusCode>(s.error_code());
    if (code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded) {
      return absl::Status(
          code, strings::Cat("cannot reach driftless-api at ", address, ": ", s.error_message()));
    }
    return absl::Status(code, s.error_message());
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
  absl::Status s = impl_->ToStatus(impl_->stub->Apply(&context, request, &response));
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<v1::Application> ApiClient::Get(const std::string& name) {
  grpc::ClientContext context;
  impl_->Prepare(context);
  v1::GetApplicationRequest request;
  request.set_name(name);
  v1::Application response;
  absl::Status s = impl_->ToStatus(impl_->stub->Get(&context, request, &response));
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<std::vector<v1::Application>> ApiClient::List(const std::string& project,
                                                             const std::string& name_pattern) {
  grpc::ClientContext context;
  impl_->Prepare(context);
  v1::ListApplicationsRequest request;
  request.set_project(project);
  request.set_name_pattern(name_pattern);
  v1::ListApplicationsResponse response;
  absl::Status s = impl_->ToStatus(impl_->stub->List(&context, request, &response));
  if (!s.ok()) return s;
  return std::vector<v1::Application>(response.applications().begin(),
                                      response.applications().end());
}

absl::Status ApiClient::Delete(const std::string& name, bool cascade) {
  grpc::ClientContext context;
  impl_->Prepare(context);
  v1::DeleteApplicationRequest request;
  request.set_name(name);
  request.set_cascade(cascade);
  v1::DeleteApplicationResponse response;
  return impl_->ToStatus(impl_->stub->Delete(&context, request, &response));
}

absl::StatusOr<std::string> ApiClient::Sync(const v1::SyncApplicationRequest& request) {
  grpc::ClientContext context;
  impl_->Prepare(context);
  v1::SyncApplicationResponse response;
  absl::Status s = impl_->ToStatus(impl_->stub->Sync(&context, request, &response));
  if (!s.ok()) return s;
  return response.sync_id();
}

absl::StatusOr<std::vector<v1::Resource>> ApiClient::ListResources(const std::string& kind) {
  grpc::ClientContext context;
  impl_->Prepare(context);
  v1::ListResourcesRequest request;
  request.set_kind(kind);
  v1::ListResourcesResponse response;
  absl::Status s = impl_->ToStatus(impl_->stub->ListResources(&context, request, &response));
  if (!s.ok()) return s;
  return std::vector<v1::Resource>(response.resources().begin(), response.resources().end());
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
  return impl_->ToStatus(status);
}

}  // namespace driftless::cli
