// The repo-poller against a real nats-server and a real git repository (created with the git
// CLI, reached through a file:// URL and the real libgit2 client): registering an application
// yields source.changed on stage render, a new commit another, sync.requested always one
// (carrying the request), webhook.push polls at once, and a missing branch or repository sets
// SourceError and broadcasts sync.failed once while everything else keeps working.
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>

#include "common/bus/nats_connection.h"
#include "common/bus/nats_event_bus.h"
#include "common/bus/nats_kv_store.h"
#include "common/bus/testing/nats_server.h"
#include "common/git/libgit2_client.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/events.h"
#include "services/common/identity.h"
#include "services/common/state.h"
#include "services/common/testing/fixtures.h"
#include "services/common/topology.h"
#include "services/repo-poller/poller_service.h"

namespace driftless::repo_poller {
namespace {

using manifest::Json;
using service::testing::ConfigMapYaml;
using service::testing::EventCollector;
using service::testing::GitRepo;
using service::testing::WaitFor;
using ::testing::Contains;
using ::testing::HasSubstr;

// The real client, counting ls-remote calls per URL.
class CountingGit : public git::GitClient {
 public:
  explicit CountingGit(git::GitClient* real) : real_(real) {}
  absl::StatusOr<git::RefMap> ListRemoteRefs(std::string_view url,
                                             const git::Credentials& c) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++calls_[std::string(url)];
    }
    return real_->ListRemoteRefs(url, c);
  }
  absl::StatusOr<git::RefMap> Fetch(std::string_view url, const git::Credentials& c) override {
    return real_->Fetch(url, c);
  }
  absl::StatusOr<std::string> ExpandCommit(std::string_view url, std::string_view sha) override {
    return real_->ExpandCommit(url, sha);
  }
  absl::StatusOr<git::CheckoutResult> Checkout(std::string_view url, std::string_view commit,
                                               const std::string& dest,
                                               std::string_view path) override {
    return real_->Checkout(url, commit, dest, path);
  }
  absl::StatusOr<std::vector<std::string>> ChangedPaths(std::string_view url, std::string_view from,
                                                        std::string_view to) override {
    return real_->ChangedPaths(url, from, to);
  }
  std::map<std::string, int> calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  git::GitClient* real_;
  std::mutex mu_;
  std::map<std::string, int> calls_;
};

// A working-tree git repository driven by the git CLI.

// Collects decoded events from a durable consumer, acking each.

Json App(const std::string& name, const std::string& url, const Json& ref,
         const std::string& path = "apps/guestbook") {
  Json source = {{"repoURL", url}, {"path", path}};
  if (!ref.is_null()) source["ref"] = ref;
  return {
      {"apiVersion", "driftless.dev/v1alpha1"},
      {"kind", "Application"},
      {"metadata", {{"name", name}}},
      {"spec",
       {{"source", source}, {"destination", {{"cluster", "in-cluster"}, {"namespace", "gb"}}}}}};
}

class PollerIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(server_, bus::testing::NatsServerProcess::Start(tmp_.path() + "/js"));
    ASSERT_OK_AND_ASSIGN(conn_, bus::NatsConnection::Connect(server_->url(), "poller-test"));
    bus_ = std::make_unique<bus::NatsEventBus>(conn_);
    kv_ = std::make_unique<bus::NatsKvStore>(conn_);
    ASSERT_OK(service::Provision(*bus_, *kv_));
    repo_ = std::make_unique<GitRepo>(tmp_.path() + "/repo");
    repo_->Write("apps/guestbook/a.yaml", "kind: ConfigMap\n");
    repo_->Write("README", "hello\n");
    first_ = repo_->Commit("first");
    git_ = std::make_unique<git::Libgit2Client>(
        git::Libgit2ClientOptions{.cache_dir = tmp_.path() + "/mirrors"});
    ASSERT_OK(render_.Start(*bus_, service::kWorkStream, service::kStageRender));
    ASSERT_OK(broadcasts_.Start(*bus_, service::kEventsStream, service::kNotifierDurable));
  }

  void TearDown() override {
    if (poll_sub_) poll_sub_->Stop();
    if (poller_) poller_->Stop();
    render_.Stop();
    broadcasts_.Stop();
  }

  void StartPoller(absl::Duration default_interval) {
    poller_ = std::make_unique<PollerService>(bus_.get(), kv_.get(), git_.get(),
                                              PollerOptions{.emitter = "repo-poller/test",
                                                            .default_interval = default_interval,
                                                            .resync_interval = absl::Seconds(1)});
    ASSERT_OK(poller_->Start());
    ASSERT_OK_AND_ASSIGN(poll_sub_, bus_->Consume(service::kWorkStream, service::kStagePoll,
                                                  [this](const bus::Message& m) {
                                                    absl::StatusOr<v1::Event> e =
                                                        service::DecodeEvent(m.data);
                                                    if (!e.ok())
                                                      return bus::Disposition::Term("undecodable");
                                                    return poller_->Handle(*e, m);
                                                  },
                                                  {}));
  }

  std::string SpecDigest(const std::string& app) {
    auto r = service::ResourceStore(kv_.get()).Get("Application", app);
    EXPECT_OK(r.status());
    return r.ok() ? r->spec_digest : "";
  }

  // Waits until every broadcast so far has been collected.
  void DrainBroadcasts() {
    ASSERT_TRUE(WaitFor([&] {
      auto st = bus_->GetConsumerState(service::kEventsStream, service::kNotifierDurable);
      return st.ok() && st->num_pending == 0 && st->num_ack_pending == 0;
    }));
  }

  bus::testing::TempDir tmp_;
  std::unique_ptr<bus::testing::NatsServerProcess> server_;
  std::shared_ptr<bus::NatsConnection> conn_;
  std::unique_ptr<bus::NatsEventBus> bus_;
  std::unique_ptr<bus::NatsKvStore> kv_;
  std::unique_ptr<GitRepo> repo_;
  std::string first_;
  std::unique_ptr<git::Libgit2Client> git_;
  EventCollector render_;
  EventCollector broadcasts_;
  std::unique_ptr<PollerService> poller_;
  std::unique_ptr<bus::Subscription> poll_sub_;
};

TEST_F(PollerIntegrationTest, NewApplicationThenNewCommitEachYieldSourceChanged) {
  StartPoller(absl::Milliseconds(300));  // the timer drives this test
  ASSERT_OK(service::ResourceStore(kv_.get())
                .Put(App("guestbook", repo_->url(), {{"branch", "main"}}))
                .status());
  v1::Event first = render_.WaitNth("source.changed", "guestbook", 1);
  ASSERT_EQ(first.type(), "source.changed");
  EXPECT_EQ(first.revision(), first_);
  const v1::SourceChanged& p = first.source_changed();
  EXPECT_EQ(p.revision(), first_);
  EXPECT_EQ(p.previous_revision(), "");
  EXPECT_EQ(p.ref(), "refs/heads/main");
  EXPECT_EQ(p.repo_url(), repo_->url());
  EXPECT_THAT(p.applications(), ::testing::ElementsAre("guestbook"));
  EXPECT_EQ(p.spec_digest(), SpecDigest("guestbook"));
  EXPECT_FALSE(p.has_sync_request());
  // The first desired generation of this incarnation; the id derives from the identity.
  ASSERT_OK_AND_ASSIGN(service::StoredResource stored,
                       service::ResourceStore(kv_.get()).Get("Application", "guestbook"));
  const service::SyncIdentity id = service::IdentityOf(first);
  EXPECT_EQ(id, (service::SyncIdentity{stored.uid, 1, 1}));
  EXPECT_EQ(first.id(), service::IdentityEventId("source.changed", "guestbook", id));
  EXPECT_FALSE(first.correlation_id().empty());

  repo_->Write("apps/guestbook/b.yaml", "kind: Secret\n");
  const std::string second = repo_->Commit("second");
  v1::Event next = render_.WaitNth("source.changed", "guestbook", 2);
  ASSERT_EQ(next.revision(), second);
  EXPECT_EQ(next.desired_seq(), 2);
  EXPECT_EQ(next.source_changed().previous_revision(), first_);
  EXPECT_THAT(next.source_changed().changed_paths(), Contains("apps/guestbook/b.yaml"));

  // Nothing moved: polling again publishes nothing.
  ASSERT_OK(poller_->PollNow("guestbook"));
  ASSERT_OK(poller_->PollNow("guestbook"));
  auto record = service::SourceStore(kv_.get()).Get("guestbook");
  ASSERT_OK(record.status());
  ASSERT_TRUE(record->has_value());
  EXPECT_EQ((*record)->revision, second);
  EXPECT_EQ((*record)->ref, "refs/heads/main");
  DrainBroadcasts();
  EXPECT_EQ(broadcasts_.Events("source.changed", "guestbook").size(), 2u);

  // A spec change (same commit) is announced again, for the new spec digest.
  Json changed = App("guestbook", repo_->url(), {{"branch", "main"}});
  changed["spec"]["source"]["directory"] = {{"recurse", true}};
  ASSERT_OK(service::ResourceStore(kv_.get()).Put(changed).status());
  v1::Event third = render_.WaitNth("source.changed", "guestbook", 3);
  EXPECT_EQ(third.revision(), second);
  EXPECT_EQ(third.desired_seq(), 3);
  EXPECT_EQ(third.source_changed().spec_digest(), SpecDigest("guestbook"));
}

// Regression: automated sync identity was a content hash, so a branch moved back to a commit
// applied before was found in history and never synced again. Every move mints a new seq.
TEST_F(PollerIntegrationTest, BranchMovedBackMintsANewGeneration) {
  StartPoller(absl::Minutes(10));
  ASSERT_OK(service::ResourceStore(kv_.get())
                .Put(App("guestbook", repo_->url(), {{"branch", "main"}}))
                .status());
  ASSERT_EQ(render_.WaitNth("source.changed", "guestbook", 1).desired_seq(), 1);
  repo_->Write("apps/guestbook/b.yaml", "kind: Secret\n");
  repo_->Commit("second");
  ASSERT_OK(poller_->PollNow("guestbook"));
  ASSERT_EQ(render_.WaitNth("source.changed", "guestbook", 2).desired_seq(), 2);
  repo_->Run("reset -q --hard " + first_);
  ASSERT_OK(poller_->PollNow("guestbook"));
  v1::Event back = render_.WaitNth("source.changed", "guestbook", 3);
  EXPECT_EQ(back.revision(), first_);
  EXPECT_EQ(back.desired_seq(), 3);
}

// A commit that touches none of the application's paths is recorded but syncs nothing.
TEST_F(PollerIntegrationTest, CommitOutsideTheApplicationPathMintsNothing) {
  StartPoller(absl::Minutes(10));
  ASSERT_OK(service::ResourceStore(kv_.get())
                .Put(App("guestbook", repo_->url(), {{"branch", "main"}}))
                .status());
  ASSERT_EQ(render_.WaitNth("source.changed", "guestbook", 1).desired_seq(), 1);
  repo_->Write("elsewhere/readme.md", "not the app\n");
  const std::string other = repo_->Commit("elsewhere");
  ASSERT_OK(poller_->PollNow("guestbook"));
  auto record = service::SourceStore(kv_.get()).Get("guestbook");
  ASSERT_OK(record.status());
  ASSERT_TRUE(record->has_value());
  EXPECT_EQ((*record)->revision, other);
  EXPECT_EQ((*record)->desired_seq, 1);
  DrainBroadcasts();
  EXPECT_EQ(broadcasts_.Events("source.changed", "guestbook").size(), 1u);
}

TEST_F(PollerIntegrationTest, SyncRequestedAlwaysYieldsSourceChangedWithTheRequest) {
  StartPoller(absl::Minutes(10));
  ASSERT_OK(service::ResourceStore(kv_.get())
                .Put(App("guestbook", repo_->url(), {{"branch", "main"}}))
                .status());
  ASSERT_EQ(render_.WaitNth("source.changed", "guestbook", 1).revision(), first_);

  v1::Event request = service::NewEvent("sync.requested", "guestbook", "", "api/test");
  request.set_id("sync.requested/guestbook/s1");
  request.set_correlation_id("s1");
  request.mutable_sync_requested()->set_sync_id("s1");
  request.mutable_sync_requested()->set_prune(true);
  request.mutable_sync_requested()->set_requested_by("user:cli");
  const absl::Time sent = absl::Now();
  ASSERT_OK(service::Emit(*bus_, request, service::kStagePoll));
  v1::Event answer = render_.WaitNth("source.changed", "guestbook", 2);
  const absl::Duration latency = absl::Now() - sent;
  ASSERT_EQ(answer.type(), "source.changed");
  EXPECT_EQ(answer.revision(), first_);  // unchanged, still announced
  EXPECT_EQ(answer.correlation_id(), "s1");
  EXPECT_EQ(answer.source_changed().sync_request().sync_id(), "s1");
  EXPECT_TRUE(answer.source_changed().sync_request().prune());
  EXPECT_EQ(answer.desired_seq(), 2);  // a request always mints a new generation
  EXPECT_LT(latency, absl::Seconds(2)) << "sync.requested took " << latency;
  std::cerr << "sync.requested -> source.changed: " << absl::FormatDuration(latency) << "\n";

  // An exact revision in the request is used instead of the ref.
  repo_->Write("apps/guestbook/b.yaml", "kind: Secret\n");
  const std::string second = repo_->Commit("second");
  v1::Event pinned = request;
  pinned.set_id("sync.requested/guestbook/s2");
  pinned.set_correlation_id("s2");
  pinned.mutable_sync_requested()->set_sync_id("s2");
  pinned.mutable_sync_requested()->set_revision(first_.substr(0, 10));
  ASSERT_OK(service::Emit(*bus_, pinned, service::kStagePoll));
  v1::Event at = render_.WaitNth("source.changed", "guestbook", 3);
  EXPECT_EQ(at.revision(), first_);
  EXPECT_EQ(at.source_changed().sync_request().sync_id(), "s2");

  // Regression (e2e ResilienceTest, a poller killed before its ack): request s1 delivered
  // again after s2 minted nothing; had it minted, its generation would supersede s2's and the
  // applier would skip it as a sync already done. The next source.changed is s4's.
  v1::Event again = request;
  again.set_id("sync.requested/guestbook/s1-redelivered");
  ASSERT_OK(service::Emit(*bus_, again, service::kStagePoll));
  v1::Event later = request;
  later.set_id("sync.requested/guestbook/s4");
  later.mutable_sync_requested()->set_sync_id("s4");
  ASSERT_OK(service::Emit(*bus_, later, service::kStagePoll));
  v1::Event fourth = render_.WaitNth("source.changed", "guestbook", 4);
  EXPECT_EQ(fourth.source_changed().sync_request().sync_id(), "s4");
  EXPECT_EQ(fourth.desired_seq(), 4);

  // A sync for an application that does not exist fails visibly.
  v1::Event unknown = request;
  unknown.set_application("nope");
  unknown.set_id("sync.requested/nope/s3");
  unknown.mutable_sync_requested()->set_sync_id("s3");
  ASSERT_OK(service::Emit(*bus_, unknown, service::kStagePoll));
  v1::Event failed = broadcasts_.WaitNth("sync.failed", "nope", 1);
  EXPECT_EQ(failed.sync_finished().sync_id(), "s3");
  EXPECT_THAT(failed.sync_finished().error(), HasSubstr("application nope not found"));
  (void)second;
}

TEST_F(PollerIntegrationTest, WebhookPushPollsMatchingApplicationsAtOnce) {
  StartPoller(absl::Minutes(10));
  ASSERT_OK(service::ResourceStore(kv_.get())
                .Put(App("guestbook", repo_->url(), {{"branch", "main"}}))
                .status());
  ASSERT_EQ(render_.WaitNth("source.changed", "guestbook", 1).revision(), first_);
  repo_->Write("apps/guestbook/b.yaml", "kind: Secret\n");
  const std::string second = repo_->Commit("second");
  v1::Event push = service::NewEvent("webhook.push", "", "", "api/test");
  push.set_id("webhook.push/1");
  push.set_correlation_id("push-1");
  push.mutable_webhook_push()->set_repo_url(repo_->url() + "/");  // normalized: still matches
  push.mutable_webhook_push()->set_ref("refs/heads/main");
  push.mutable_webhook_push()->set_after(second);
  ASSERT_OK(service::Emit(*bus_, push, service::kStagePoll));
  v1::Event next = render_.WaitNth("source.changed", "guestbook", 2);
  EXPECT_EQ(next.revision(), second);
  EXPECT_EQ(next.correlation_id(), "push-1");
}

TEST_F(PollerIntegrationTest, MissingBranchOrRepositorySetsSourceErrorOnceAndOthersKeepWorking) {
  StartPoller(absl::Milliseconds(300));
  service::ResourceStore resources(kv_.get());
  ASSERT_OK(resources.Put(App("broken", repo_->url(), {{"branch", "nope"}})).status());
  ASSERT_OK(
      resources.Put(App("gone", "file://" + tmp_.path() + "/no-such-repo", {{"branch", "main"}}))
          .status());
  ASSERT_OK(resources.Put(App("good", repo_->url(), nlohmann::json())).status());  // HEAD

  v1::Event good = render_.WaitNth("source.changed", "good", 1);
  EXPECT_EQ(good.revision(), first_);
  EXPECT_EQ(good.source_changed().ref(), "HEAD");

  v1::Event failed = broadcasts_.WaitNth("sync.failed", "broken", 1);
  ASSERT_EQ(failed.type(), "sync.failed");
  EXPECT_FALSE(failed.sync_finished().succeeded());
  EXPECT_THAT(failed.sync_finished().error(), HasSubstr("broken"));
  EXPECT_THAT(failed.sync_finished().error(), HasSubstr("branch nope"));
  EXPECT_THAT(failed.sync_finished().error(), HasSubstr(repo_->url()));
  EXPECT_EQ(failed.severity(), v1::SEVERITY_ERROR);

  v1::AppStatus status;
  ASSERT_TRUE(WaitFor([&] {
    auto s = service::StatusStore(kv_.get()).Get("broken");
    if (!s.ok()) return false;
    status = *s;
    const v1::Condition* c = service::FindCondition(status, "SourceError");
    return c != nullptr && c->status();
  }));
  const v1::Condition* c = service::FindCondition(status, "SourceError");
  EXPECT_EQ(c->reason(), "NotFound");
  EXPECT_THAT(c->message(), HasSubstr("branch nope"));
  EXPECT_THAT(status.message(), HasSubstr("application broken"));

  v1::Event gone = broadcasts_.WaitNth("sync.failed", "gone", 1);
  EXPECT_THAT(gone.sync_finished().error(), HasSubstr("no-such-repo"));

  // Later polls of the same error do not broadcast again.
  ASSERT_OK(poller_->PollNow("broken"));
  ASSERT_OK(poller_->PollNow("broken"));
  DrainBroadcasts();
  EXPECT_EQ(broadcasts_.Events("sync.failed", "broken").size(), 1u);
  EXPECT_TRUE(render_.Events("source.changed", "broken").empty());

  // The service keeps working: a new commit reaches the good application.
  repo_->Write("apps/guestbook/b.yaml", "kind: Secret\n");
  const std::string second = repo_->Commit("second");
  EXPECT_EQ(render_.WaitNth("source.changed", "good", 2).revision(), second);

  // Fixing the spec clears SourceError and announces the source.
  ASSERT_OK(resources.Put(App("broken", repo_->url(), {{"branch", "main"}})).status());
  EXPECT_EQ(render_.WaitNth("source.changed", "broken", 1).revision(), second);
  ASSERT_TRUE(WaitFor([&] {
    auto s = service::StatusStore(kv_.get()).Get("broken");
    const v1::Condition* cond = s.ok() ? service::FindCondition(*s, "SourceError") : nullptr;
    return cond != nullptr && !cond->status() && cond->reason() == "Resolved";
  }));
  auto record = service::SourceStore(kv_.get()).Get("broken");
  ASSERT_OK(record.status());
  ASSERT_TRUE(record->has_value());
  EXPECT_EQ((*record)->error, "");
}

TEST_F(PollerIntegrationTest, DeletedApplicationIsForgotten) {
  StartPoller(absl::Minutes(10));
  service::ResourceStore resources(kv_.get());
  ASSERT_OK(resources.Put(App("guestbook", repo_->url(), {{"branch", "main"}})).status());
  ASSERT_EQ(render_.WaitNth("source.changed", "guestbook", 1).revision(), first_);
  ASSERT_OK(resources.Delete("Application", "guestbook"));
  ASSERT_TRUE(WaitFor([&] {
    auto r = service::SourceStore(kv_.get()).Get("guestbook");
    return r.ok() && !r->has_value();
  }));
  // Registered again: polled again and recorded. (With the identical spec and commit the
  // source.changed carries the same event id, so JetStream's duplicate window drops it when
  // the re-registration follows within two minutes: see docs/design/repo-poller.md.)
  ASSERT_OK(resources.Put(App("guestbook", repo_->url(), {{"branch", "main"}})).status());
  ASSERT_TRUE(WaitFor([&] {
    auto r = service::SourceStore(kv_.get()).Get("guestbook");
    return r.ok() && r->has_value() && (*r)->revision == first_;
  }));
}

// Two replicas, many repositories: each repository is polled by one replica only, and when
// one replica stops, the other takes its repositories over.
TEST_F(PollerIntegrationTest, EachRepositoryHasOnePollOwnerWithFailover) {
  constexpr int kRepos = 12;
  for (int i = 0; i < kRepos; ++i) {
    GitRepo r(tmp_.path() + "/r" + std::to_string(i));
    r.Write("apps/guestbook/a.yaml", "kind: ConfigMap\n");
    r.Commit("first");
    ASSERT_OK(service::ResourceStore(kv_.get())
                  .Put(App("app" + std::to_string(i), r.url(), {{"branch", "main"}}))
                  .status());
  }
  CountingGit git_a(git_.get()), git_b(git_.get());
  auto options = [](const char* id) {
    return PollerOptions{.emitter = std::string("repo-poller/") + id,
                         .default_interval = absl::Milliseconds(400),
                         .resync_interval = absl::Minutes(10),
                         .replica_id = id,
                         .membership_interval = absl::Milliseconds(100)};
  };
  auto a = std::make_unique<PollerService>(bus_.get(), kv_.get(), &git_a, options("a"));
  PollerService b(bus_.get(), kv_.get(), &git_b, options("b"));
  ASSERT_OK(a->Start());
  ASSERT_OK(b.Start());
  ASSERT_TRUE(WaitFor([&] { return a->Owns("x") != b.Owns("x"); }, absl::Seconds(5)))
      << "both replicas registered";
  // Let membership settle and the polls started before it finish, then count a few intervals.
  absl::SleepFor(absl::Milliseconds(1500));
  const auto a0 = git_a.calls(), b0 = git_b.calls();
  absl::SleepFor(absl::Seconds(2));
  const auto a1 = git_a.calls(), b1 = git_b.calls();
  int owned_by_a = 0;
  for (const auto& [url, n] : a1) {
    const int da = n - (a0.count(url) ? a0.at(url) : 0);
    const int db = (b1.count(url) ? b1.at(url) : 0) - (b0.count(url) ? b0.at(url) : 0);
    EXPECT_TRUE(da == 0 || db == 0) << url << " polled by both: " << da << " and " << db;
    owned_by_a += da > 0;
  }
  int polled = 0;
  for (int i = 0; i < kRepos; ++i) {
    const std::string url = "file://" + tmp_.path() + "/r" + std::to_string(i);
    const int da = (a1.count(url) ? a1.at(url) : 0) - (a0.count(url) ? a0.at(url) : 0);
    const int db = (b1.count(url) ? b1.at(url) : 0) - (b0.count(url) ? b0.at(url) : 0);
    polled += (da + db) > 0;
  }
  EXPECT_EQ(polled, kRepos) << "every repository is polled";
  EXPECT_GT(owned_by_a, 0);
  EXPECT_LT(owned_by_a, kRepos);

  // a stops (and leaves): b polls everything within an interval or two.
  a->Stop();
  a.reset();
  absl::SleepFor(absl::Milliseconds(300));
  const auto b2 = git_b.calls();
  absl::SleepFor(absl::Seconds(2));
  const auto b3 = git_b.calls();
  for (int i = 0; i < kRepos; ++i) {
    const std::string url = "file://" + tmp_.path() + "/r" + std::to_string(i);
    EXPECT_GT((b3.count(url) ? b3.at(url) : 0) - (b2.count(url) ? b2.at(url) : 0), 0)
        << url << " not taken over";
  }
  b.Stop();
}

}  // namespace
}  // namespace driftless::repo_poller
