// EventWatcher on NATS JetStream: an ordered ephemeral consumer on DRIFTLESS_EVENTS, so a
// watch leaves nothing behind on the server when it ends (unlike a durable consumer).
//
// Uses cnats directly through common/bus/internal (the EventBus interface has only durable
// consumers); if EventBus grows a "tail the stream" call, this file becomes a thin adapter.
#pragma once

#include <functional>
#include <memory>

#include "common/bus/nats_connection.h"
#include "services/api/application_api.h"

namespace driftless::api {

class NatsEventWatcher : public EventWatcher {
 public:
  explicit NatsEventWatcher(std::shared_ptr<bus::NatsConnection> connection)
      : connection_(std::move(connection)) {}

  // Thread-safe: every call has its own consumer, which starts at `start` (JetStream deliver
  // policy new / all / by start sequence / by start time) and is filtered to
  // driftless.events.<type> when `type` is set. Messages that do not decode as an Event are
  // skipped.
  absl::Status Watch(const WatchStart& start, const std::string& type,
                     const std::function<bool(const v1::Event&)>& sink,
                     const std::function<bool()>& cancelled) override;

 private:
  std::shared_ptr<bus::NatsConnection> connection_;
};

}  // namespace driftless::api
