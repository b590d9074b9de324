#include "common/http/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <thread>

#include "common/testing/status_matchers.h"

namespace driftless::http {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

httplib::Client ClientFor(const Server& server) {
  httplib::Client client("127.0.0.1", server.port());
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  return client;
}

TEST(ServerTest, HealthzReadyzMetrics) {
  metrics::Registry registry;
  registry.AddCounterFamily("driftless_test_total", "Test counter.", {"app"})
      .WithLabels({"guestbook"})
      .Increment(7);
  Server server({.registry = &registry});
  std::atomic<bool> nats_ready{false};
  server.AddReadinessCheck("nats", [&]() -> absl::Status {
    return nats_ready ? absl::OkStatus() : absl::UnavailableError("not connected");
  });
  server.AddReadinessCheck("cache", [] { return absl::OkStatus(); });
  ASSERT_OK(server.Start());
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(server.BaseUrl(), "http://127.0.0.1:" + std::to_string(server.port()));
  httplib::Client client = ClientFor(server);

  auto health = client.Get("/healthz");
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 200);

  auto not_ready = client.Get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_THAT(not_ready->body, HasSubstr("nats: UNAVAILABLE: not connected"));
  EXPECT_THAT(not_ready->body, Not(HasSubstr("cache")));

  nats_ready = true;
  auto ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);

  server.AddReadinessCheck("late", [] { return absl::FailedPreconditionError("no key"); });
  auto late = client.Get("/readyz");
  ASSERT_TRUE(late);
  EXPECT_EQ(late->status, 503);
  EXPECT_THAT(late->body, HasSubstr("late: FAILED_PRECONDITION: no key"));

  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(metrics->body, HasSubstr("# TYPE driftless_test_total counter\n"
                                       "driftless_test_total{app=\"guestbook\"} 7\n"));
  EXPECT_THAT(metrics->body, HasSubstr("process_resident_memory_bytes "));
  EXPECT_THAT(metrics->body, HasSubstr("process_start_time_seconds "));
  EXPECT_THAT(metrics->body, HasSubstr("process_cpu_seconds_total "));

  auto missing = client.Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  server.Stop();
}

TEST(ServerTest, PostRouteWithBodyLimit) {
  metrics::Registry registry;
  Server server({.registry = &registry, .max_body_bytes = 1024});
  std::atomic<int> calls{0};
  ASSERT_OK(server.HandlePost("/hooks/*", 100, [&](const Request& r) {
    ++calls;
    return Response{.status = 202,
                    .content_type = "application/json",
                    .body = "{\"path\":\"" + r.path +
                            "\",\"len\":" + std::to_string(r.body.size()) + ",\"event\":\"" +
                            r.Header("x-github-event") + "\",\"q\":\"" + r.Query("app") + "\"}"};
  }));
  ASSERT_OK(server.HandlePost("/big", 4096, [&](const Request& r) {
    return Response{.body = std::to_string(r.body.size())};
  }));
  ASSERT_OK(server.Start());
  httplib::Client client = ClientFor(server);

  httplib::Headers headers = {{"X-GitHub-Event", "push"}};
  auto ok = client.Post("/hooks/github?app=guestbook", headers, std::string(100, 'x'),
                        "application/json");
  ASSERT_TRUE(ok) << httplib::to_string(ok.error());
  EXPECT_EQ(ok->status, 202);
  EXPECT_EQ(ok->body,
            "{\"path\":\"/hooks/github\",\"len\":100,\"event\":\"push\",\"q\":\"guestbook\"}");
  EXPECT_EQ(calls, 1);

  // Over the route's limit but under the server-wide one: rejected by our check.
  auto too_big = client.Post("/hooks/github", std::string(101, 'x'), "application/json");
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->status, 413);
  // Over every limit: rejected by httplib before the body is read.
  auto way_too_big = client.Post("/hooks/github", std::string(100000, 'x'), "application/json");
  ASSERT_TRUE(way_too_big) << httplib::to_string(way_too_big.error());
  EXPECT_EQ(way_too_big->status, 413);
  EXPECT_EQ(calls, 1);

  auto big = client.Post("/big", std::string(4000, 'y'), "text/plain");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 200);
  EXPECT_EQ(big->body, "4000");

  // GET on a POST-only route.
  auto get = client.Get("/big");
  ASSERT_TRUE(get);
  EXPECT_NE(get->status, 200);
}

TEST(ServerTest, CustomGetRoute) {
  metrics::Registry registry;
  Server server({.registry = &registry});
  ASSERT_OK(server.HandleGet("/version", [](const Request&) {
    return Response{.body = "0.1.0\n", .headers = {{"X-Driftless", "1"}}};
  }));
  ASSERT_OK(server.Start());
  httplib::Client client = ClientFor(server);
  auto res = client.Get("/version");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "0.1.0\n");
  EXPECT_EQ(res->get_header_value("X-Driftless"), "1");
  // Exact match: a longer path with the same prefix is not routed.
  auto other = client.Get("/version2");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
}

TEST(ServerTest, RouteRegistrationErrors) {
  metrics::Registry registry;
  Server server({.registry = &registry});
  auto h = [](const Request&) { return Response{}; };
  EXPECT_THAT(server.HandleGet("/healthz", h), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(server.HandleGet("nope", h), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK(server.HandlePost("/a", 10, h));
  EXPECT_THAT(server.HandlePost("/a", 10, h), StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_OK(server.Start());
  EXPECT_THAT(server.HandlePost("/b", 10, h), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(server.Start(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(ServerTest, PortInUseIsUnavailable) {
  metrics::Registry registry;
  Server first({.registry = &registry});
  ASSERT_OK(first.Start());
  Server second({.port = first.port(), .registry = &registry});
  EXPECT_THAT(second.Start(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr(std::to_string(first.port()))));
}

TEST(ServerTest, StopWaitsForInFlightRequestAndIsIdempotent) {
  metrics::Registry registry;
  Server server({.registry = &registry});
  std::atomic<bool> entered{false};
  std::atomic<bool> release{false};
  ASSERT_OK(server.HandleGet("/slow", [&](const Request&) {
    entered = true;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!release && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    return Response{.body = "done"};
  }));
  ASSERT_OK(server.Start());
  const int port = server.port();
  std::atomic<int> status{0};
  std::string body;
  std::thread client_thread([&] {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(10);
    auto res = client.Get("/slow");
    if (res) {
      status = res->status;
      body = res->body;
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!entered && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  ASSERT_TRUE(entered);
  std::thread stopper([&] { server.Stop(); });
  release = true;
  stopper.join();
  client_thread.join();
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, "done");
  server.Stop();  // idempotent
  // The port no longer accepts connections.
  httplib::Client after("127.0.0.1", port);
  after.set_connection_timeout(1);
  EXPECT_FALSE(after.Get("/healthz"));
}

TEST(ServerTest, StopRightAfterStartDoesNotHang) {
  metrics::Registry registry;
  for (int i = 0; i < 20; ++i) {
    Server server({.registry = &registry});
    ASSERT_OK(server.Start());
    server.Stop();
  }
}

}  // namespace
}  // namespace driftless::http
