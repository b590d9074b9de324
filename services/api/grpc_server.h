// The gRPC transport of the API: serves driftless.v1.ApplicationService by delegating every
// call to an ApplicationApi and passing its absl::Status codes on as gRPC codes (they map
// 1:1). grpcpp stays out of this header (it is slow to compile); see grpc_server.cc.
//
//   ApplicationApi api(&rt->bus(), &rt->kv(), rt->emitter());
//   DL_ASSIGN_OR_RETURN(auto server, GrpcServer::Start(&api, "127.0.0.1", 0));
//   std::cout << server->port();       // the bound port
//   server->Shutdown();                // also done by the destructor
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "services/api/application_api.h"

namespace driftless::api {

// Trailing metadata on every error the API answers (not on transport errors): clients use it
// to tell an answer of the server from a failure to reach it.
inline constexpr char kErrorOriginKey[] = "driftless-error-origin";
inline constexpr char kErrorOriginApi[] = "driftless-api";

class GrpcServer {
 public:
  // Starts serving `api` (which must outlive the server) on address:port, without TLS;
  // port 0 picks a free port. With a non-empty `token`, every call must carry the metadata
  // "authorization: Bearer <token>" or gets UNAUTHENTICATED. kUnavailable if the address
  // cannot be bound.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(ApplicationApi* api,
                                                           const std::string& address, int port,
                                                           const std::string& token = "");
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  int port() const;
  // "<address>:<port>".
  std::string address() const;
  // Stops accepting calls, cancels running streams (WatchEvents) and waits up to 5 s for
  // unary calls to finish. Idempotent.
  void Shutdown();

  struct Impl;

 private:
  explicit GrpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace driftless::api
