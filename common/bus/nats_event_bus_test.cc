#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/bus/event_bus.h"
#include "common/bus/nats_test_util.h"

namespace driftless::bus {
namespace {

using ::driftless::testing::StatusIs;

// Records every delivery; thread-safe.
struct Recorder {
  std::mutex mu;
  std::vector<Message> messages;
  std::vector<absl::Time> times;

  void Add(const Message& m) {
    std::lock_guard<std::mutex> lock(mu);
    messages.push_back(m);
    times.push_back(absl::Now());
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu);
    return messages.size();
  }
};

class NatsEventBusTest : public NatsTest {
 protected:
  void SetUpWorkQueue(int max_deliver = 5, absl::Duration ack_wait = absl::Seconds(30)) {
    StreamSpec stream;
    stream.name = "WORK";
    stream.subjects = {"work.>"};
    stream.retention = Retention::kWorkQueue;
    ASSERT_OK(bus_->EnsureStream(stream));
    ASSERT_OK(bus_->EnsureStream(DeadLetterStreamSpec("DLQ", "test")));
    ConsumerSpec consumer;
    consumer.stream = "WORK";
    consumer.durable = "worker";
    consumer.filter_subject = "work.render";
    consumer.max_deliver = max_deliver;
    consumer.ack_wait = ack_wait;
    ASSERT_OK(bus_->EnsureConsumer(consumer));
  }

  ConsumeOptions Options() {
    ConsumeOptions o;
    o.fetch_wait = absl::Milliseconds(100);
    o.dead_letter_prefix = "test";
    return o;
  }

  // Waits until the work queue is empty and nothing is in flight.
  bool WaitDrained() {
    return WaitFor([&] {
      auto c = bus_->GetConsumerState("WORK", "worker");
      auto s = bus_->GetStreamState("WORK");
      return c.ok() && s.ok() && c->num_pending == 0 && c->num_ack_pending == 0 && s->messages == 0;
    });
  }

  // Every message currently in the DLQ stream, read through a fresh consumer.
  std::vector<Message> ReadDeadLetters(size_t expected) {
    ConsumerSpec c;
    c.stream = "DLQ";
    c.durable = "reader";
    EXPECT_OK(bus_->EnsureConsumer(c));
    Recorder rec;
    auto sub = bus_->Consume(
        "DLQ", "reader",
        [&](const Message& m) {
          rec.Add(m);
          return Disposition::Ack();
        },
        Options());
    EXPECT_OK(sub.status());
    EXPECT_TRUE(WaitFor([&] { return rec.size() >= expected; }));
    if (sub.ok()) (*sub)->Stop();
    return rec.messages;
  }
};

TEST_F(NatsEventBusTest, PublishConsumeAck) {
  SetUpWorkQueue();
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(PublishAck ack,
                         bus_->Publish("work.render", "payload-" + std::to_string(i),
                                       "id-" + std::to_string(i), {{"App", "guestbook"}}));
    EXPECT_EQ(ack.stream, "WORK");
    EXPECT_EQ(ack.sequence, static_cast<uint64_t>(i + 1));
    EXPECT_FALSE(ack.duplicate);
  }
  Recorder rec;
  ASSERT_OK_AND_ASSIGN(auto sub, bus_->Consume(
                                     "WORK", "worker",
                                     [&](const Message& m) {
                                       rec.Add(m);
                                       return Disposition::Ack();
                                     },
                                     Options()));
  ASSERT_TRUE(WaitFor([&] { return rec.size() == 3; }));
  ASSERT_TRUE(WaitDrained());
  sub->Stop();
  ASSERT_EQ(rec.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const Message& m = rec.messages[i];
    EXPECT_EQ(m.stream, "WORK");
    EXPECT_EQ(m.subject, "work.render");
    EXPECT_EQ(m.data, "payload-" + std::to_string(i));
    EXPECT_EQ(m.msg_id, "id-" + std::to_string(i));
    EXPECT_EQ(m.headers.at("App"), "guestbook");
    EXPECT_EQ(m.delivery_count, 1u);
    EXPECT_EQ(m.stream_sequence, static_cast<uint64_t>(i + 1));
  }
  EXPECT_OK(sub->Health());
}

TEST_F(NatsEventBusTest, RequestIsAnsweredByOneServerOfTheQueue) {
  // Nobody serves the subject yet: unavailable at once, not a timeout.
  absl::StatusOr<std::string> none = bus_->Request("rpc.echo", "hi", absl::Seconds(2));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable) << none.status();

  std::atomic<int> a{0}, b{0};
  ASSERT_OK_AND_ASSIGN(auto first, bus_->Serve("rpc.echo", "echo", [&](std::string_view r) {
    ++a;
    return "a:" + std::string(r);
  }));
  ASSERT_OK_AND_ASSIGN(auto second, bus_->Serve("rpc.echo", "echo", [&](std::string_view r) {
    ++b;
    return "b:" + std::string(r);
  }));
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(std::string reply,
                         bus_->Request("rpc.echo", "n" + std::to_string(i), absl::Seconds(5)));
    EXPECT_TRUE(reply == "a:n" + std::to_string(i) || reply == "b:n" + std::to_string(i)) << reply;
  }
  EXPECT_EQ(a + b, 20);  // each request answered once, by one member of the queue
  first->Stop();
  second->Stop();
  EXPECT_EQ(bus_->Request("rpc.echo", "hi", absl::Seconds(2)).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(NatsEventBusTest, EnsureIsIdempotentAndUpdates) {
  SetUpWorkQueue();
  SetUpWorkQueue();  // same specs again
  StreamSpec stream;
  stream.name = "WORK";
  stream.subjects = {"work.>"};
  stream.retention = Retention::kWorkQueue;
  stream.max_age = absl::Hours(1);  // updatable
  EXPECT_OK(bus_->EnsureStream(stream));
  stream.retention = Retention::kLimits;  // not updatable
  EXPECT_THAT(bus_->EnsureStream(stream), StatusIs(absl::StatusCode::kFailedPrecondition));
  ConsumerSpec consumer;
  consumer.stream = "WORK";
  consumer.durable = "worker";
  consumer.filter_subject = "work.render";
  consumer.max_deliver = 7;
  consumer.ack_wait = absl::Seconds(10);
  ASSERT_OK(bus_->EnsureConsumer(consumer));
  ASSERT_OK_AND_ASSIGN(ConsumerState state, bus_->GetConsumerState("WORK", "worker"));
  EXPECT_EQ(state.max_deliver, 7);
  EXPECT_EQ(state.ack_wait, absl::Seconds(10));
  consumer.stream = "NOPE";
  EXPECT_THAT(bus_->EnsureConsumer(consumer), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(bus_->EnsureStream(StreamSpec{.name = "bad.name", .subjects = {"x"}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(NatsEventBusTest, DuplicateMsgIdIsDropped) {
  SetUpWorkQueue();
  ASSERT_OK_AND_ASSIGN(PublishAck first, bus_->Publish("work.render", "a", "same-id", {}));
  ASSERT_OK_AND_ASSIGN(PublishAck second, bus_->Publish("work.render", "a", "same-id", {}));
  EXPECT_FALSE(first.duplicate);
  EXPECT_TRUE(second.duplicate);
  EXPECT_EQ(second.sequence, first.sequence);
  ASSERT_OK_AND_ASSIGN(StreamState state, bus_->GetStreamState("WORK"));
  EXPECT_EQ(state.messages, 1u);
  // A different id is a different message.
  ASSERT_OK_AND_ASSIGN(PublishAck third, bus_->Publish("work.render", "a", "other-id", {}));
  EXPECT_FALSE(third.duplicate);
  EXPECT_EQ(third.sequence, first.sequence + 1);
}

TEST_F(NatsEventBusTest, NakRedeliversAfterDelay) {
  SetUpWorkQueue();
  ASSERT_OK(bus_->Publish("work.render", "x", "nak-1", {}).status());
  Recorder rec;
  const absl::Duration delay = absl::Milliseconds(700);
  ASSERT_OK_AND_ASSIGN(auto sub, bus_->Consume(
                                     "WORK", "worker",
                                     [&](const Message& m) {
                                       rec.Add(m);
                                       return m.delivery_count == 1
                                                  ? Disposition::Nak(delay, "transient")
                                                  : Disposition::Ack();
                                     },
                                     Options()));
  ASSERT_TRUE(WaitFor([&] { return rec.size() == 2; }));
  ASSERT_TRUE(WaitDrained());
  sub->Stop();
  EXPECT_EQ(rec.messages[0].delivery_count, 1u);
  EXPECT_EQ(rec.messages[1].delivery_count, 2u);
  EXPECT_EQ(rec.messages[1].data, "x");
  EXPECT_GE(rec.times[1] - rec.times[0], delay - absl::Milliseconds(50));
}

TEST_F(NatsEventBusTest, UnackedMessageGoesToAnotherSubscriberAfterAckWait) {
  SetUpWorkQueue(/*max_deliver=*/5, /*ack_wait=*/absl::Milliseconds(800));
  ASSERT_OK(bus_->Publish("work.render", "job", "crash-1", {}).status());
  Recorder first;
  {
    // The "crashing" replica: takes the message and never acknowledges it.
    ASSERT_OK_AND_ASSIGN(auto sub, bus_->Consume(
                                       "WORK", "worker",
                                       [&](const Message& m) {
                                         first.Add(m);
                                         return Disposition::Abandon();
                                       },
                                       Options()));
    ASSERT_TRUE(WaitFor([&] { return first.size() >= 1; }));
  }  // destroyed: the durable consumer must survive it
  ASSERT_OK_AND_ASSIGN(ConsumerState after_crash, bus_->GetConsumerState("WORK", "worker"));
  EXPECT_EQ(after_crash.num_ack_pending + static_cast<int64_t>(after_crash.num_pending), 1);

  const absl::Time restarted = absl::Now();
  Recorder second;
  ASSERT_OK_AND_ASSIGN(auto sub2, bus_->Consume(
                                      "WORK", "worker",
                                      [&](const Message& m) {
                                        second.Add(m);
                                        return Disposition::Ack();
                                      },
                                      Options()));
  ASSERT_TRUE(WaitFor([&] { return second.size() >= 1; }));
  ASSERT_TRUE(WaitDrained());
  sub2->Stop();
  EXPECT_EQ(first.messages[0].delivery_count, 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second.messages[0].data, "job");
  EXPECT_GE(second.messages[0].delivery_count, 2u);
  EXPECT_GE(second.times[0] - first.times[0], absl::Milliseconds(700));
  EXPECT_LT(second.times[0] - restarted, absl::Seconds(5));
}

TEST_F(NatsEventBusTest, TwoSubscribersShareTheQueueWithoutDuplicates) {
  SetUpWorkQueue();
  constexpr int kMessages = 200;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_OK(
        bus_->Publish("work.render", std::to_string(i), "share-" + std::to_string(i), {}).status());
  }
  std::mutex mu;
  std::map<std::string, int> processed;  // payload -> times processed
  std::atomic<int> by_a{0}, by_b{0};
  auto handler = [&](std::atomic<int>* mine) {
    return [&, mine](const Message& m) {
      absl::SleepFor(absl::Milliseconds(1));  // simulated work, so both replicas get a share
      {
        std::lock_guard<std::mutex> lock(mu);
        ++processed[m.data];
      }
      ++*mine;
      return Disposition::Ack();
    };
  };
  ASSERT_OK_AND_ASSIGN(auto a, bus_->Consume("WORK", "worker", handler(&by_a), Options()));
  ASSERT_OK_AND_ASSIGN(auto b, bus_->Consume("WORK", "worker", handler(&by_b), Options()));
  ASSERT_TRUE(WaitFor([&] { return by_a + by_b >= kMessages; }));
  ASSERT_TRUE(WaitDrained());
  a->Stop();
  b->Stop();
  EXPECT_EQ(by_a + by_b, kMessages);
  EXPECT_GT(by_a, 0);
  EXPECT_GT(by_b, 0);
  ASSERT_EQ(processed.size(), static_cast<size_t>(kMessages));
  for (const auto& [payload, count] : processed) EXPECT_EQ(count, 1) << payload;
}

TEST_F(NatsEventBusTest, MaxDeliverDeadLettersWithTheError) {
  SetUpWorkQueue(/*max_deliver=*/3);
  ASSERT_OK(bus_->Publish("work.render", "poison", "p-1", {{"App", "guestbook"}}).status());
  std::atomic<int> calls{0};
  ASSERT_OK_AND_ASSIGN(auto sub, bus_->Consume(
                                     "WORK", "worker",
                                     [&](const Message&) {
                                       ++calls;
                                       return Disposition::Nak(absl::ZeroDuration(),
                                                               "render failed: boom");
                                     },
                                     Options()));
  ASSERT_TRUE(WaitFor([&] {
    auto s = bus_->GetStreamState("DLQ");
    return s.ok() && s->messages == 1;
  }));
  ASSERT_TRUE(WaitDrained());
  sub->Stop();
  EXPECT_EQ(calls.load(), 3);
  std::vector<Message> dead = ReadDeadLetters(1);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].subject, "test.dlq.work.render");
  EXPECT_EQ(dead[0].data, "poison");
  EXPECT_EQ(dead[0].headers.at(kDlqErrorHeader), "render failed: boom");
  EXPECT_EQ(dead[0].headers.at(kDlqSubjectHeader), "work.render");
  EXPECT_EQ(dead[0].headers.at(kDlqStreamHeader), "WORK");
  EXPECT_EQ(dead[0].headers.at(kDlqDeliveriesHeader), "3");
  EXPECT_EQ(dead[0].headers.at("App"), "guestbook");
}

TEST_F(NatsEventBusTest, TermDeadLettersAtOnce) {
  SetUpWorkQueue(/*max_deliver=*/5);
  ASSERT_OK(bus_->Publish("work.render", "bad", "t-1", {}).status());
  std::atomic<int> calls{0};
  ASSERT_OK_AND_ASSIGN(auto sub, bus_->Consume(
                                     "WORK", "worker",
                                     [&](const Message&) {
                                       ++calls;
                                       return Disposition::Term("invalid spec:\nfield x");
                                     },
                                     Options()));
  ASSERT_TRUE(WaitFor([&] {
    auto s = bus_->GetStreamState("DLQ");
    return s.ok() && s->messages == 1;
  }));
  ASSERT_TRUE(WaitDrained());
  sub->Stop();
  EXPECT_EQ(calls.load(), 1);
  std::vector<Message> dead = ReadDeadLetters(1);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].headers.at(kDlqErrorHeader), "invalid spec: field x");  // no line breaks
}

TEST_F(NatsEventBusTest, CrashLoopIsDeadLetteredWithoutCallingTheHandlerAgain) {
  SetUpWorkQueue(/*max_deliver=*/2, /*ack_wait=*/absl::Milliseconds(300));
  ASSERT_OK(bus_->Publish("work.render", "crashes-the-handler", "c-1", {}).status());
  std::atomic<int> calls{0};
  ASSERT_OK_AND_ASSIGN(auto sub,
                       bus_->Consume(
                           "WORK", "worker",
                           [&](const Message&) {
                             ++calls;
                             return Disposition::Abandon();  // as if the process died mid-handler
                           },
                           Options()));
  ASSERT_TRUE(WaitFor([&] {
    auto s = bus_->GetStreamState("DLQ");
    return s.ok() && s->messages == 1;
  }));
  ASSERT_TRUE(WaitDrained());
  sub->Stop();
  EXPECT_EQ(calls.load(), 2);
  std::vector<Message> dead = ReadDeadLetters(1);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_THAT(dead[0].headers.at(kDlqErrorHeader), ::testing::HasSubstr("without a disposition"));
  EXPECT_EQ(dead[0].headers.at(kDlqDeliveriesHeader), "3");
}

TEST_F(NatsEventBusTest, LongHandlerIsKeptAliveByInProgress) {
  SetUpWorkQueue(/*max_deliver=*/5, /*ack_wait=*/absl::Milliseconds(400));
  ASSERT_OK(bus_->Publish("work.render", "slow", "s-1", {}).status());
  Recorder rec;
  ASSERT_OK_AND_ASSIGN(auto sub, bus_->Consume(
                                     "WORK", "worker",
                                     [&](const Message& m) {
                                       rec.Add(m);
                                       absl::SleepFor(absl::Milliseconds(
                                           1500));  // simulated long work, > 3x ack wait
                                       return Disposition::Ack();
                                     },
                                     Options()));
  ASSERT_TRUE(WaitDrained());
  sub->Stop();
  ASSERT_EQ(rec.size(), 1u);
  ASSERT_OK_AND_ASSIGN(ConsumerState state, bus_->GetConsumerState("WORK", "worker"));
  EXPECT_EQ(state.num_redelivered, 0);
}

TEST_F(NatsEventBusTest, ThroughputFigures) {
  SetUpWorkQueue();
  constexpr int kMessages = 2000;
  const std::string payload(1024, 'p');
  const absl::Time start = absl::Now();
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_OK(bus_->Publish("work.render", payload, "tp-" + std::to_string(i), {}).status());
  }
  const absl::Duration publish = absl::Now() - start;
  std::atomic<int> consumed{0};
  ConsumeOptions options = Options();
  options.batch = 64;
  const absl::Time consume_start = absl::Now();
  ASSERT_OK_AND_ASSIGN(auto sub, bus_->Consume(
                                     "WORK", "worker",
                                     [&](const Message&) {
                                       ++consumed;
                                       return Disposition::Ack();
                                     },
                                     options));
  ASSERT_TRUE(WaitFor([&] { return consumed.load() >= kMessages; }, absl::Seconds(60)));
  const absl::Duration consume = absl::Now() - consume_start;
  ASSERT_TRUE(WaitDrained());
  sub->Stop();
  EXPECT_EQ(consumed.load(), kMessages);
  std::cerr << kMessages << " x 1 KiB: sync publish " << kMessages / absl::ToDoubleSeconds(publish)
            << " msg/s, consume+AckSync " << kMessages / absl::ToDoubleSeconds(consume)
            << " msg/s\n";
}

TEST_F(NatsEventBusTest, ErrorsAreSpecific) {
  SetUpWorkQueue();
  EXPECT_THAT(bus_->Publish("nostream.here", "x", "", {}), StatusIs(absl::StatusCode::kNotFound));
  const std::string huge(static_cast<size_t>(conn_->max_payload()) + 1, 'x');
  EXPECT_THAT(bus_->Publish("work.render", huge, "big", {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto handler = [](const Message&) { return Disposition::Ack(); };
  EXPECT_THAT(bus_->Consume("WORK", "nobody", handler, Options()),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(bus_->Consume("NOSTREAM", "worker", handler, Options()),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(bus_->GetStreamState("NOSTREAM"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_OK(conn_->Ready());
}

}  // namespace
}  // namespace driftless::bus
