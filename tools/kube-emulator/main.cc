// driftless-kube-emulator: a Kubernetes API server good enough for kubectl v1.32.
// Flags -> store, controllers, HTTP(S) server -> wait for SIGTERM/SIGINT. See README.md.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>

#include <CLI/CLI.hpp>

#include "tools/kube-emulator/controllers.h"
#include "tools/kube-emulator/http_server.h"
#include "tools/kube-emulator/state_file.h"

namespace {

bool WriteFileAtomically(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return false;
    out << content;
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace driftless::kube_emulator;
  CLI::App app{"driftless-kube-emulator: an in-memory Kubernetes API server"};
  int port = 0;
  std::string address = "127.0.0.1", token, kubeconfig, ready_file, state_file;
  bool tls = false, kubeconfig_client_cert = false;
  int rollout_delay_ms = 200, delay_ms = 0;
  long long gzip_min_bytes = -1;
  size_t threads = 256, history = 4096;
  app.add_option("--port", port, "port (0 = pick a free one)");
  app.add_option("--address", address, "listen address");
  app.add_flag("--tls", tls, "serve HTTPS with a generated CA");
  app.add_option("--token", token, "require this bearer token (or a client certificate)");
  app.add_option("--write-kubeconfig", kubeconfig, "write a kubeconfig for the server here");
  app.add_flag("--kubeconfig-client-cert", kubeconfig_client_cert,
               "put a CA-signed client certificate (not the token) in the kubeconfig");
  app.add_option("--ready-file", ready_file, "write the URL here once listening");
  app.add_option("--state-file", state_file,
                 "load/persist the objects: a JSON snapshot here and a change log in FILE.log");
  app.add_option("--rollout-delay", rollout_delay_ms, "simulated rollout time in ms");
  app.add_option("--threads", threads, "HTTP threads (each watch holds one)");
  app.add_option("--watch-history", history, "events kept for watch replay");
  app.add_option("--delay-ms", delay_ms,
                 "delay every API request by this many ms (a real API server's round trip)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--gzip-min-bytes", gzip_min_bytes,
                 "gzip (level 1) bodies of at least this many bytes for clients accepting it; "
                 "negative (default): never; 131072 is kube-apiserver's threshold");
  CLI11_PARSE(app, argc, argv);

  // Block termination signals in every thread; main waits for them with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  RealClock clock;
  Registry registry;
  Store store(&registry, &clock, StoreOptions{history});
  std::optional<StateWriter> state_writer;
  if (!state_file.empty()) {
    if (absl::Status st = LoadState(&store, state_file); !st.ok()) {
      std::cerr << "state file " << state_file << ": " << st.message() << "\n";
      return 1;
    }
    state_writer.emplace(&store, state_file, StateWriterOptions{});
    if (absl::Status st = state_writer->Start(); !st.ok()) {
      std::cerr << "state file " << state_file << ": " << st.message() << "\n";
      return 1;
    }
  }
  std::optional<TlsMaterial> material;
  if (tls) {
    auto m = GenerateTlsMaterial();
    if (!m.ok()) {
      std::cerr << "TLS: " << m.status().message() << "\n";
      return 1;
    }
    material = std::move(*m);
  }
  ServerOptions options;
  options.address = address;
  options.port = port;
  options.token = token;
  options.threads = threads;
  options.request_delay = std::chrono::milliseconds(delay_ms);
  options.gzip_min_bytes = gzip_min_bytes;
  ApiServer server(&store, &clock, options, material ? &*material : nullptr);
  if (absl::Status st = server.Start(); !st.ok()) {
    std::cerr << st.message() << "\n";
    return 1;
  }
  Controllers controllers(&store, &clock,
                          ControllerOptions{std::chrono::milliseconds(rollout_delay_ms)});
  controllers.Start();

  if (!kubeconfig.empty()) {
    std::string cfg =
        KubeconfigYaml(server.Url(), material ? material->ca_cert : "",
                       kubeconfig_client_cert && material ? "" : token,
                       kubeconfig_client_cert && material ? material->client_cert : "",
                       kubeconfig_client_cert && material ? material->client_key : "");
    if (!WriteFileAtomically(kubeconfig, cfg)) {
      std::cerr << "cannot write " << kubeconfig << "\n";
      return 1;
    }
  }
  std::cout << "driftless-kube-emulator listening on " << server.Url() << std::endl;
  if (!ready_file.empty() && !WriteFileAtomically(ready_file, server.Url() + "\n")) {
    std::cerr << "cannot write " << ready_file << "\n";
    return 1;
  }

  int sig = 0;
  sigwait(&signals, &sig);
  controllers.Stop();
  store.Close();
  server.Stop();
  // Appends what is left and leaves one snapshot (errors were printed as they happened).
  if (state_writer) (void)state_writer->Stop();
  std::cout << "driftless-kube-emulator stopped" << std::endl;
  return 0;
}
