// Shared fixture for the NATS integration tests of common/bus: a private nats-server per test
// (free port, temp store dir, killed by PID at teardown) and a connection to it.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/bus/nats_connection.h"
#include "common/bus/nats_event_bus.h"
#include "common/bus/nats_kv_store.h"
#include "common/bus/testing/nats_server.h"
#include "common/testing/status_matchers.h"

namespace driftless::bus {

// Polls `pred` every 5 ms until it holds or `timeout` passes; returns its last value.
inline bool WaitFor(const std::function<bool()>& pred, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (pred()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

class NatsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    auto server = testing::NatsServerProcess::Start(tmp_.path() + "/js");
    ASSERT_OK(server.status());
    server_ = std::move(*server);
    auto conn = Connect("test");
    ASSERT_OK(conn.status());
    conn_ = *conn;
    bus_ = std::make_unique<NatsEventBus>(conn_);
    kv_ = std::make_unique<NatsKvStore>(conn_);
  }

  absl::StatusOr<std::shared_ptr<NatsConnection>> Connect(const std::string& name) {
    NatsConnectionOptions options;
    options.url = server_->url();
    options.name = name;
    options.reconnect_wait = absl::Milliseconds(100);
    return NatsConnection::Connect(options);
  }

  // Declaration order is teardown order in reverse: buses before the connection, the
  // connection before the server, the server before its directory.
  testing::TempDir tmp_;
  std::unique_ptr<testing::NatsServerProcess> server_;
  std::shared_ptr<NatsConnection> conn_;
  std::unique_ptr<NatsEventBus> bus_;
  std::unique_ptr<NatsKvStore> kv_;
};

}  // namespace driftless::bus
