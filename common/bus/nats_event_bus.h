// EventBus on NATS JetStream (cnats 3.4). Streams and durable pull consumers are created with
// the JetStream management API; Consume binds a pull subscription to the existing durable (so
// stopping it never deletes the consumer) and fetches in batches on its own thread. Acks are
// synchronous (AckSync) so an acknowledged message is never redelivered after a server restart.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/bus/event_bus.h"
#include "common/bus/nats_connection.h"

namespace driftless::bus {

struct NatsEventBusOptions {
  // With a msg_id, Publish retries transient failures (server restarting, no JetStream yet)
  // until this much time has passed since the first attempt.
  absl::Duration publish_retry_deadline = absl::Seconds(15);
};

class NatsEventBus : public EventBus {
 public:
  explicit NatsEventBus(std::shared_ptr<NatsConnection> connection,
                        NatsEventBusOptions options = {});
  ~NatsEventBus() override;

  absl::StatusOr<PublishAck> Publish(std::string_view subject, std::string_view data,
                                     std::string_view msg_id, const Headers& headers) override;
  absl::Status EnsureStream(const StreamSpec& spec) override;
  absl::Status EnsureConsumer(const ConsumerSpec& spec) override;
  absl::StatusOr<std::unique_ptr<Subscription>> Consume(std::string_view stream,
                                                        std::string_view durable, Handler handler,
                                                        const ConsumeOptions& options) override;
  absl::StatusOr<std::string> Request(std::string_view subject, std::string_view data,
                                      absl::Duration timeout) override;
  absl::StatusOr<std::unique_ptr<Subscription>> Serve(std::string_view subject,
                                                      std::string_view queue,
                                                      Responder responder) override;
  absl::StatusOr<StreamState> GetStreamState(std::string_view stream) override;
  absl::StatusOr<ConsumerState> GetConsumerState(std::string_view stream,
                                                 std::string_view durable) override;

 private:
  std::shared_ptr<NatsConnection> connection_;
  NatsEventBusOptions options_;
};

}  // namespace driftless::bus
