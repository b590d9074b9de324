// Fixtures shared by the services' integration tests (test code only, header-only): a git
// working tree driven by the git CLI, a collector of the events one durable consumer sees,
// and deadline polling.
//
//   GitRepo repo(dir.path() + "/repo");                       // file:// URL: repo.url()
//   repo.Write("apps/a/cm.yaml", ConfigMapYaml("a", "1"));
//   std::string revision = repo.Commit("first");
//
//   EventCollector events;                                     // a test's own consumer
//   ASSERT_OK(events.Start(bus, service::kEventsStream, "test-events", "driftless.events.>"));
//   v1::Event changed = events.WaitNth("source.changed", "guestbook", 1);
//   ASSERT_TRUE(events.WaitFor("sync.succeeded", 2));
//   ASSERT_TRUE(WaitFor([&] { return ...; }, absl::Seconds(10)));
//
// EventCollector is thread-safe; GitRepo is not.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/bus/event_bus.h"
#include "common/bus/nats_test_util.h"
#include "common/status/status.h"
#include "driftless/v1/events.pb.h"
#include "gtest/gtest.h"
#include "services/common/events.h"

namespace driftless::service::testing {

namespace v1 = ::driftless::v1;

// Polls every 5 ms until the predicate holds or the timeout passes.
using bus::WaitFor;

// A working-tree git repository on branch `main` (or `branch`), driven by the git CLI.
class GitRepo {
 public:
  explicit GitRepo(std::string dir, const std::string& branch = "main") : dir_(std::move(dir)) {
    EXPECT_EQ(std::system(("mkdir -p '" + dir_ + "'").c_str()), 0);
    Run("init -q -b " + branch);
    Run("config user.email test@example.com");
    Run("config user.name test");
    Run("config commit.gpgsign false");
  }
  const std::string& dir() const { return dir_; }
  std::string url() const { return "file://" + dir_; }
  // Writes `content` to `path` (relative to the working tree), creating parent directories.
  void Write(const std::string& path, const std::string& content) {
    std::string full = dir_ + "/" + path;
    std::string parent = full.substr(0, full.rfind('/'));
    EXPECT_EQ(std::system(("mkdir -p '" + parent + "'").c_str()), 0);
    std::ofstream(full) << content;
  }
  // Commits everything in the working tree; returns the new HEAD.
  std::string Commit(const std::string& message) {
    Run("add -A");
    Run("commit -q -m '" + message + "'");
    return Output("rev-parse HEAD");
  }
  // `git -C DIR <args>`, which must succeed.
  void Run(const std::string& args) {
    ASSERT_EQ(std::system(("git -C '" + dir_ + "' " + args + " >/dev/null 2>&1").c_str()), 0)
        << args;
  }
  // The standard output of `git -C DIR <args>`, without its trailing newline.
  std::string Output(const std::string& args) {
    std::string out;
    FILE* p = popen(("git -C '" + dir_ + "' " + args).c_str(), "r");
    if (p == nullptr) return out;
    char buf[256];
    while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
    pclose(p);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }

 private:
  std::string dir_;
};

// Every event one durable consumer delivers, decoded and acked.
class EventCollector {
 public:
  EventCollector() = default;
  ~EventCollector() { Stop(); }
  EventCollector(const EventCollector&) = delete;
  EventCollector& operator=(const EventCollector&) = delete;

  // `filter` non-empty: first creates `durable` on `stream` for that subject filter (a test's
  // own consumer); empty: consumes an existing durable (e.g. a stage's work-queue consumer).
  absl::Status Start(bus::EventBus& bus, const std::string& stream, const std::string& durable,
                     const std::string& filter = "") {
    if (!filter.empty()) {
      DL_RETURN_IF_ERROR(bus.EnsureConsumer(
          {.stream = stream, .durable = durable, .filter_subject = filter, .max_deliver = 0}));
    }
    DL_ASSIGN_OR_RETURN(sub_, bus.Consume(stream, durable,
                                          [this](const bus::Message& m) {
                                            absl::StatusOr<v1::Event> e = DecodeEvent(m.data);
                                            if (e.ok()) {
                                              std::lock_guard<std::mutex> lock(mu_);
                                              events_.push_back(*std::move(e));
                                            }
                                            return bus::Disposition::Ack();
                                          },
                                          {.fetch_wait = absl::Milliseconds(100)}));
    return absl::OkStatus();
  }
  void Stop() {
    if (sub_) sub_->Stop();
    sub_.reset();
  }

  // The events so far of `type` (empty: any) for `application` (empty: any), in arrival order.
  std::vector<v1::Event> Events(std::string_view type = "", std::string_view application = "") {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<v1::Event> out;
    for (const v1::Event& e : events_) {
      if ((type.empty() || e.type() == type) &&
          (application.empty() || e.application() == application)) {
        out.push_back(e);
      }
    }
    return out;
  }
  // Whether at least `n` events of `type` arrived within `timeout`.
  bool WaitFor(std::string_view type, size_t n, absl::Duration timeout = absl::Seconds(20)) {
    return bus::WaitFor([&] { return Events(type).size() >= n; }, timeout);
  }
  // The n-th (from 1) event of `type` for `application`; an empty event at the timeout.
  v1::Event WaitNth(std::string_view type, std::string_view application, size_t n,
                    absl::Duration timeout = absl::Seconds(30)) {
    v1::Event out;
    bus::WaitFor(
        [&] {
          std::vector<v1::Event> all = Events(type, application);
          if (all.size() < n) return false;
          out = all[n - 1];
          return true;
        },
        timeout);
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<v1::Event> events_;
  std::unique_ptr<bus::Subscription> sub_;
};

// A ConfigMap `name` with data {v: value}, as YAML.
inline std::string ConfigMapYaml(const std::string& name, const std::string& value) {
  return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  v: \"" +
         value + "\"\n";
}

}  // namespace driftless::service::testing
