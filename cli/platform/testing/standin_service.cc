// A stand-in for a driftless service binary, for supervisor tests: accepts any flags, serves
// /healthz, /readyz and /metrics on --http-port, writes --ready-file like service::Runtime
// (plus "args": its command line, and for an argv[0] ending in "api" a "grpc" address and
// "webhooks"), and exits 0 on SIGTERM/SIGINT. Named by the symlink it is run through
// (driftless-<service>).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "common/config/shutdown_signal.h"
#include "common/http/server.h"
#include "common/strings/str.h"
#include "nlohmann/json.hpp"

int main(int argc, char** argv) {
  using namespace driftless;
  std::string ready_file;
  int http_port = 0;
  int grpc_port = 0;
  nlohmann::json args = nlohmann::json::array();
  for (int i = 0; i < argc; ++i) {
    args.push_back(argv[i]);
    std::string a = argv[i];
    std::string next = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--ready-file") ready_file = next;
    if (a == "--http-port") strings::ParseInt(next, &http_port);
    if (a == "--grpc-port") strings::ParseInt(next, &grpc_port);
  }
  std::string self = argv[0];
  std::string service = self.substr(self.rfind('/') + 1);
  if (service.rfind("driftless-", 0) == 0) service = service.substr(10);

  auto shutdown = config::ShutdownSignal::Install();
  if (!shutdown.ok()) return 1;
  http::Server server({.port = http_port});
  if (!server.Start().ok()) {
    std::cerr << "standin " << service << ": cannot listen on port " << http_port << "\n";
    return 1;
  }
  std::unique_ptr<http::Server> grpc;
  nlohmann::json ready = {{"service", service},
                          {"pid", static_cast<int64_t>(getpid())},
                          {"http", server.BaseUrl()},
                          {"args", args}};
  if (service == "api") {
    grpc = std::make_unique<http::Server>(http::ServerOptions{.port = grpc_port});
    if (!grpc->Start().ok()) return 1;
    ready["grpc"] = strings::Cat("127.0.0.1:", grpc->port());
    ready["webhooks"] = server.BaseUrl() + "/hooks";
  }
  std::cerr << "standin " << service << " serving " << server.BaseUrl() << "\n";
  if (!ready_file.empty()) {
    std::string tmp = ready_file + ".tmp";
    std::ofstream(tmp) << ready.dump() << "\n";
    std::rename(tmp.c_str(), ready_file.c_str());
  }
  (*shutdown)->WaitForShutdown();
  server.Stop();
  if (grpc) grpc->Stop();
  return 0;
}
