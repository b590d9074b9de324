#include "cli/api/client.h"

#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/manifest/manifest.h"
#include "common/strings/str.h"
#include "driftless/v1/api.grpc.pb.h"

namespace driftless::cli {

struct ApiClient::Impl {
  std::string address;
  absl::Duration timeout;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::ApplicationService::Stub> stub;

  void Prepare(grpc::ClientContext& context) const {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
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

}  // namespace driftless::cli
