// One NATS connection (with JetStream) shared by NatsEventBus and NatsKvStore in a process.
// Reconnects forever; while disconnected, publishes are buffered or fail with kUnavailable /
// kDeadlineExceeded, and consumers resume once the server is back.
//
//   DL_ASSIGN_OR_RETURN(auto conn, NatsConnection::Connect({.url = flags.nats_url,
//                                                           .name = "driftless-planner"}));
//   NatsEventBus bus(conn);  NatsKvStore kv(conn);
//   readyz: conn->Ready()
//
// nats.h stays out of this header: the implementation lives in nats_connection.cc.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace driftless::bus {

enum class ConnectionState { kConnecting, kConnected, kReconnecting, kClosed };

const char* ConnectionStateName(ConnectionState state);

struct NatsConnectionOptions {
  // One server, or several (a cluster) separated by commas: "nats://a:4222,nats://b:4222".
  std::string url = "nats://127.0.0.1:4222";
  std::string name;  // shown by the server (client name)
  absl::Duration reconnect_wait = absl::Milliseconds(500);
  absl::Duration connect_timeout = absl::Seconds(2);
  absl::Duration request_timeout = absl::Seconds(5);  // JetStream API and publish acks
  // If the server is unreachable at Connect, keep trying in the background (state
  // kConnecting) instead of failing.
  bool retry_initial_connect = false;
  // Called on cnats' callback thread on every state change. Must not block.
  std::function<void(ConnectionState)> on_state_change;
};

class NatsConnection {
 public:
  // kUnavailable if the server cannot be reached (unless retry_initial_connect),
  // kInvalidArgument for a malformed URL.
  static absl::StatusOr<std::shared_ptr<NatsConnection>> Connect(
      const NatsConnectionOptions& options);
  static absl::StatusOr<std::shared_ptr<NatsConnection>> Connect(const std::string& url,
                                                                 const std::string& name);

  ~NatsConnection();
  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  ConnectionState state() const;
  // OK when connected; kUnavailable naming the state otherwise. For /readyz.
  absl::Status Ready() const;
  // Largest message payload the server accepts (bytes); 0 until first connected.
  int64_t max_payload() const;
  const NatsConnectionOptions& options() const;
  // Number of reconnections since Connect (for metrics and tests).
  int64_t reconnects() const;
  // The URL of the server this connection is attached to now ("nats://127.0.0.1:4222"), or
  // empty while disconnected. With several URLs (a cluster), the node currently in use.
  std::string connected_url() const;

  struct Impl;  // defined in nats_connection.cc; holds the cnats handles
  Impl* impl() const { return impl_.get(); }

 private:
  explicit NatsConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace driftless::bus
