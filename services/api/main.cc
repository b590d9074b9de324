// driftless-api: the gRPC API (proto/driftless/v1/api.proto), the state of record and webhook
// ingestion (POST /hooks/<receiver> on the HTTP port).
#include <atomic>
#include <cctype>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "common/config/flags.h"
#include "common/log/log.h"
#include "common/strings/str.h"
#include "services/api/application_api.h"
#include "services/api/grpc_server.h"
#include "services/api/nats_dead_letters.h"
#include "services/api/nats_event_watcher.h"
#include "services/api/webhook_receiver.h"
#include "services/common/runtime.h"

int main(int argc, char** argv) {
  using namespace driftless;
  CLI::App app{"driftless-api: the gRPC API and state of record of driftless"};
  config::ServiceFlags flags;
  config::RegisterServiceFlags(app, &flags);
  std::string grpc_address = "127.0.0.1";
  int grpc_port = 0;
  config::AddStringFlag(app, "grpc-address", &grpc_address, "address the gRPC API binds");
  config::AddIntFlag(app, "grpc-port", &grpc_port, "gRPC port; 0 picks a free port")
      ->check(CLI::Range(0, 65535));
  std::string token_file;
  config::AddStringFlag(app, "auth-token-file", &token_file,
                        "file holding the bearer token every gRPC call must carry (empty: no "
                        "authentication)");
  if (auto code = config::ParseFlags(app, argc, argv)) return *code;
  std::string token;
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    std::stringstream text;
    text << in.rdbuf();
    token = text.str();
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
      token.pop_back();
    if (!in || token.empty()) {
      std::cerr << "driftless-api: --auth-token-file " << token_file << ": no token\n";
      return 2;
    }
  }

  // The route exists before the runtime (and so the receiver) does: until then it answers 503.
  std::atomic<api::WebhookReceiver*> hooks{nullptr};
  auto add_routes = [&hooks](http::Server& server) {
    return server.HandlePost(
        "/hooks/*", api::kMaxWebhookBodyBytes, [&hooks](const http::Request& r) {
          http::Response response;
          response.content_type = "application/json";
          api::WebhookReceiver* receiver = hooks.load();
          if (receiver == nullptr) {
            response.status = 503;
            response.body = R"({"error":"starting"})";
            return response;
          }
          constexpr std::string_view kPrefix = "/hooks/";
          std::string_view path = r.path;
          std::string_view name = path.size() > kPrefix.size() ? path.substr(kPrefix.size()) : "";
          api::WebhookReceiver::Reply reply = receiver->Handle(
              name, [&r](std::string_view header) { return r.Header(header); }, r.body);
          response.status = reply.status;
          response.body = std::move(reply.body);
          return response;
        });
  };
  auto rt = service::Runtime::Start("api", flags, add_routes);
  if (!rt.ok()) {
    std::cerr << "driftless-api: " << rt.status() << "\n";
    return 1;
  }
  service::Runtime& runtime = **rt;
  api::NatsEventWatcher watcher(runtime.connection());
  api::NatsDeadLetterStore dead_letters(runtime.connection());
  api::ApplicationApi application_api(&runtime.bus(), &runtime.kv(), runtime.emitter(), &watcher,
                                      &dead_letters);
  api::WebhookReceiver webhook_receiver(&runtime.bus(), &runtime.kv(), runtime.emitter());
  hooks.store(&webhook_receiver);
  auto server = api::GrpcServer::Start(&application_api, grpc_address, grpc_port, token);
  if (!server.ok()) {
    log::Error("cannot start the gRPC server", {{"error", server.status().ToString()}});
    return 1;
  }
  // Clients on this host reach a wildcard bind through loopback.
  std::string host = grpc_address == "0.0.0.0" || grpc_address == "::" ? "127.0.0.1" : grpc_address;
  std::string endpoint = strings::Cat(host, ":", (*server)->port());
  log::Info("serving gRPC", {{"address", endpoint}});
  if (absl::Status s = runtime.MarkReady(
          {{"grpc", endpoint}, {"webhooks", runtime.http().BaseUrl() + "/hooks"}});
      !s.ok()) {
    log::Error("cannot write the ready file", {{"error", s.ToString()}});
    return 1;
  }
  int code = runtime.Run();  // stops the HTTP server: no webhook runs after this
  (*server)->Shutdown();
  hooks.store(nullptr);
  return code;
}
