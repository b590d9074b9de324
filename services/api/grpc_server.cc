#include "services/api/grpc_server.h"

#include <grpcpp/grpcpp.h>
#include <openssl/crypto.h>

#include <atomic>
#include <chrono>
#include <utility>

#include "common/strings/str.h"
#include "driftless/v1/api.grpc.pb.h"

namespace driftless::api {
namespace {

// absl and gRPC share the canonical code numbering. Every error the API itself answers
// carries the trailing metadata kErrorOriginKey, so clients tell "driftless-api answered
// UNAVAILABLE (NATS is down)" from "driftless-api could not be reached".
grpc::Status ToGrpc(grpc::ServerContext* context, const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  context->AddTrailingMetadata(kErrorOriginKey, kErrorOriginApi);
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

template <typename Response>
grpc::Status Reply(grpc::ServerContext* context, absl::StatusOr<Response> result,
                   Response* response) {
  if (!result.ok()) return ToGrpc(context, result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

class ServiceImpl final : public v1::ApplicationService::Service {
 public:
  ServiceImpl(ApplicationApi* api, const std::atomic<bool>* stopping, std::string token)
      : api_(api), stopping_(stopping), expected_(token.empty() ? "" : "Bearer " + token) {}

  grpc::Status Apply(grpc::ServerContext* context, const v1::ApplyRequest* request,
                     v1::ApplyResponse* response) override {
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    return Reply(context, api_->Apply(*request), response);
  }
  grpc::Status Get(grpc::ServerContext* context, const v1::GetApplicationRequest* request,
                   v1::Application* response) override {
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    return Reply(context, api_->Get(*request), response);
  }
  grpc::Status List(grpc::ServerContext* context, const v1::ListApplicationsRequest* request,
                    v1::ListApplicationsResponse* response) override {
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    return Reply(context, api_->List(*request), response);
  }
  grpc::Status Delete(grpc::ServerContext* context, const v1::DeleteApplicationRequest* request,
                      v1::DeleteApplicationResponse*) override {
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    return ToGrpc(context, api_->Delete(*request));
  }
  grpc::Status Sync(grpc::ServerContext* context, const v1::SyncApplicationRequest* request,
                    v1::SyncApplicationResponse* response) override {
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    return Reply(context, api_->Sync(*request), response);
  }
  grpc::Status ListResources(grpc::ServerContext* context, const v1::ListResourcesRequest* request,
                             v1::ListResourcesResponse* response) override {
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    return Reply(context, api_->ListResources(*request), response);
  }
  grpc::Status ListDeadLetters(grpc::ServerContext* context,
                               const v1::ListDeadLettersRequest* request,
                               v1::ListDeadLettersResponse* response) override {
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    return Reply(context, api_->ListDeadLetters(*request), response);
  }
  grpc::Status ListDeliveries(grpc::ServerContext* context,
                              const v1::ListDeliveriesRequest* request,
                              v1::ListDeliveriesResponse* response) override {
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    return Reply(context, api_->ListDeliveries(*request), response);
  }
  grpc::Status ListHistory(grpc::ServerContext* context, const v1::ListHistoryRequest* request,
                           v1::ListHistoryResponse* response) override {
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    return Reply(context, api_->ListHistory(*request), response);
  }
  grpc::Status Rollback(grpc::ServerContext* context, const v1::RollbackRequest* request,
                        v1::RollbackResponse* response) override {
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    return Reply(context, api_->Rollback(*request), response);
  }
  grpc::Status Diff(grpc::ServerContext* context, const v1::DiffRequest* request,
                    v1::DiffReply* response) override {
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    return Reply(context, api_->Diff(*request), response);
  }
  grpc::Status Suspend(grpc::ServerContext* context, const v1::SuspendRequest* request,
                       v1::SuspendResponse* response) override {
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    return Reply(context, api_->Suspend(*request), response);
  }
  grpc::Status RedriveDeadLetter(grpc::ServerContext* context,
                                 const v1::RedriveDeadLetterRequest* request,
                                 v1::RedriveDeadLetterResponse* response) override {
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    return Reply(context, api_->RedriveDeadLetter(*request), response);
  }
  grpc::Status WatchEvents(grpc::ServerContext* context, const v1::WatchEventsRequest* request,
                           grpc::ServerWriter<v1::Event>* writer) override {
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    return ToGrpc(context,
                  api_->WatchEvents(
                      *request, [&](const v1::Event& event) { return writer->Write(event); },
                      [&] { return context->IsCancelled() || stopping_->load(); }));
  }

 private:
  grpc::Status Authorize(grpc::ServerContext* context) const {
    if (expected_.empty()) return grpc::Status::OK;
    auto it = context->client_metadata().find("authorization");
    if (it == context->client_metadata().end()) {
      return ToGrpc(context, absl::UnauthenticatedError(
                                 "missing authorization metadata (set DRIFTLESS_TOKEN)"));
    }
    std::string_view given(it->second.data(), it->second.size());
    if (given.size() != expected_.size() ||
        CRYPTO_memcmp(given.data(), expected_.data(), given.size()) != 0) {
      return ToGrpc(context, absl::UnauthenticatedError("invalid token"));
    }
    return grpc::Status::OK;
  }

  ApplicationApi* api_;
  const std::atomic<bool>* stopping_;
  std::string expected_;  // "Bearer <token>", empty: no authentication
};

}  // namespace

struct GrpcServer::Impl {
  std::atomic<bool> stopping{false};
  std::unique_ptr<ServiceImpl> service;
  std::unique_ptr<grpc::Server> server;
  std::string host;
  int port = 0;
};

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcServer::~GrpcServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(ApplicationApi* api,
                                                              const std::string& address, int port,
                                                              const std::string& token) {
  auto impl = std::make_unique<Impl>();
  impl->service = std::make_unique<ServiceImpl>(api, &impl->stopping, token);
  impl->host = address;
  std::string target = strings::Cat(address, ":", port);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(target, grpc::InsecureServerCredentials(), &impl->port);
  builder.RegisterService(impl->service.get());
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return absl::UnavailableError(strings::Cat("cannot serve gRPC on ", target));
  }
  return std::unique_ptr<GrpcServer>(new GrpcServer(std::move(impl)));
}

int GrpcServer::port() const { return impl_->port; }

std::string GrpcServer::address() const { return strings::Cat(impl_->host, ":", impl_->port); }

void GrpcServer::Shutdown() {
  if (impl_->server == nullptr || impl_->stopping.exchange(true)) return;
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  impl_->server->Wait();
}

}  // namespace driftless::api
