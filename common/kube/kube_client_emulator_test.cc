// CurlKubeClient against the real driftless-kube-emulator process: discovery, apply,
// SSA conflicts, get, list with a selector, watch and delete, over HTTP and HTTPS + token.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "common/kube/curl_kube_client.h"
#include "common/kube/kube_error.h"
#include "common/kube/kubeconfig.h"
#include "common/kube/testing/test_util.h"
#include "common/testing/status_matchers.h"

extern char** environ;

namespace driftless::kube {
namespace {

using ::driftless::kube::testing::TempDir;
using ::driftless::testing::StatusIs;
using ::testing::Contains;
using ::testing::Field;
using ::testing::HasSubstr;

// Starts the emulator with --port 0 and waits for its ready file; stops it by PID.
class Emulator {
 public:
  explicit Emulator(const std::vector<std::string>& extra_flags) {
    kubeconfig_ = dir_.Join("kubeconfig");
    std::string ready = dir_.Join("ready");
    std::vector<std::string> args = {
        KUBE_EMULATOR_BINARY, "--port",       "0",  "--write-kubeconfig",
        kubeconfig_,          "--ready-file", ready};
    args.insert(args.end(), extra_flags.begin(), extra_flags.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ);
    EXPECT_EQ(rc, 0) << "cannot start " << KUBE_EMULATOR_BINARY;
    if (rc != 0) pid_ = -1;
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (pid_ > 0 && !std::filesystem::exists(ready) && absl::Now() < deadline) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "emulator exited early";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a file, bounded
    }
    ready_ = std::filesystem::exists(ready);
  }
  ~Emulator() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      absl::Time deadline = absl::Now() + absl::Seconds(10);
      while (waitpid(pid_, &status, WNOHANG) == 0) {
        if (absl::Now() > deadline) {
          kill(pid_, SIGKILL);
          waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }
  bool ready() const { return ready_; }
  const std::string& kubeconfig() const { return kubeconfig_; }

 private:
  TempDir dir_;
  std::string kubeconfig_;
  pid_t pid_ = -1;
  bool ready_ = false;
};

Json ConfigMap(const std::string& name, const std::string& app, const std::string& value) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", "kt"}, {"labels", {{"app", app}}}}},
          {"data", {{"key", value}}}};
}

std::unique_ptr<CurlKubeClient> Connect(const Emulator& emu) {
  absl::StatusOr<RestConfig> config = LoadKubeconfig(emu.kubeconfig());
  EXPECT_TRUE(config.ok()) << config.status();
  if (!config.ok()) return nullptr;
  absl::StatusOr<std::unique_ptr<CurlKubeClient>> kube =
      CurlKubeClient::New(*config, {.qps = 50, .burst = 100});
  EXPECT_TRUE(kube.ok()) << kube.status();
  return kube.ok() ? *std::move(kube) : nullptr;
}

TEST(KubeClientEmulatorTest, DiscoveryApplyConflictGetListWatchDelete) {
  Emulator emu({});
  ASSERT_TRUE(emu.ready());
  auto kube = Connect(emu);
  ASSERT_NE(kube, nullptr);

  ASSERT_OK_AND_ASSIGN(ResourceInfo deploy, kube->ResourceFor("apps/v1", "Deployment"));
  EXPECT_EQ(deploy.resource, "deployments");
  EXPECT_TRUE(deploy.namespaced);
  ASSERT_OK_AND_ASSIGN(ResourceInfo ns, kube->ResourceFor("v1", "Namespace"));
  EXPECT_FALSE(ns.namespaced);

  ASSERT_OK(
      kube->Apply({{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "kt"}}}},
                  {.field_manager = "driftless"})
          .status());
  ASSERT_OK_AND_ASSIGN(Json web,
                       kube->Apply(ConfigMap("web", "web", "v1"), {.field_manager = "driftless"}));
  EXPECT_EQ(web["data"]["key"], "v1");
  ASSERT_OK(kube->Apply(ConfigMap("db", "db", "x"), {.field_manager = "driftless"}).status());

  // Dry run changes nothing.
  ASSERT_OK_AND_ASSIGN(Json dry, kube->Apply(ConfigMap("web", "web", "dry"),
                                             {.field_manager = "driftless", .dry_run = true}));
  EXPECT_EQ(dry["data"]["key"], "dry");
  ASSERT_OK_AND_ASSIGN(Json live, kube->Get({"v1", "ConfigMap", "kt", "web"}));
  EXPECT_EQ(live["data"]["key"], "v1");

  // Another manager changing a field driftless owns conflicts, unless it forces.
  absl::StatusOr<Json> conflict =
      kube->Apply(ConfigMap("web", "web", "theirs"), {.field_manager = "other"});
  EXPECT_THAT(conflict,
              StatusIs(absl::StatusCode::kAborted, HasSubstr("apply v1 ConfigMap kt/web")));
  EXPECT_THAT(ApplyConflicts(conflict.status()),
              Contains(Field(&FieldConflict::manager, "driftless")));
  ASSERT_OK_AND_ASSIGN(Json forced, kube->Apply(ConfigMap("web", "web", "theirs"),
                                                {.field_manager = "other", .force = true}));
  EXPECT_EQ(forced["data"]["key"], "theirs");

  ASSERT_OK_AND_ASSIGN(ListResult webs, kube->List({.api_version = "v1",
                                                    .kind = "ConfigMap",
                                                    .namespace_ = "kt",
                                                    .label_selector = "app=web"}));
  ASSERT_EQ(webs.items.size(), 1u);
  EXPECT_EQ(webs.items[0]["metadata"]["name"], "web");
  EXPECT_EQ(webs.items[0]["kind"], "ConfigMap");
  ASSERT_FALSE(webs.resource_version.empty());
  ASSERT_OK_AND_ASSIGN(
      ListResult paged,
      kube->List({.api_version = "v1", .kind = "ConfigMap", .namespace_ = "kt", .page_size = 1}));
  EXPECT_GE(paged.items.size(), 2u);

  // Watch from the list's version sees the next change.
  std::stop_source stop;
  std::atomic<bool> saw_modified{false};
  std::thread watcher_guard([&] {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (!saw_modified && absl::Now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    stop.request_stop();
  });
  std::thread writer([&] {
    EXPECT_OK(kube->Apply(ConfigMap("web", "web", "v2"), {.field_manager = "other", .force = true})
                  .status());
  });
  absl::StatusOr<std::string> rv =
      kube->Watch({.api_version = "v1",
                   .kind = "ConfigMap",
                   .namespace_ = "kt",
                   .label_selector = "app=web",
                   .resource_version = webs.resource_version,
                   .stop = stop.get_token()},
                  [&](const WatchEvent& e) {
                    if (e.type == WatchEvent::Type::kModified && e.object["data"]["key"] == "v2") {
                      saw_modified = true;
                      return false;
                    }
                    return true;
                  });
  writer.join();
  watcher_guard.join();
  ASSERT_OK(rv.status());
  EXPECT_TRUE(saw_modified);
  EXPECT_NE(*rv, webs.resource_version);

  ASSERT_OK(kube->Delete({"v1", "ConfigMap", "kt", "web"},
                         {.propagation_policy = PropagationPolicy::kBackground}));
  EXPECT_THAT(kube->Get({"v1", "ConfigMap", "kt", "web"}), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(kube->Delete({"v1", "ConfigMap", "kt", "web"}, {}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(kube->Create(ConfigMap("db", "db", "y"), {}),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST(KubeClientEmulatorTest, TlsWithToken) {
  Emulator emu({"--tls", "--token", "s3cret"});
  ASSERT_TRUE(emu.ready());
  auto kube = Connect(emu);
  ASSERT_NE(kube, nullptr);
  ASSERT_OK(kube->Get({"v1", "Namespace", "", "default"}).status());
  absl::Time start = absl::Now();
  for (int i = 0; i < 50; ++i) ASSERT_OK(kube->Get({"v1", "Namespace", "", "default"}).status());
  std::printf("emulator GET over TLS keep-alive: %s per request, %lld connections\n",
              absl::FormatDuration((absl::Now() - start) / 50).c_str(),
              static_cast<long long>(kube->GetStats().new_connections));

  ASSERT_OK_AND_ASSIGN(RestConfig config, LoadKubeconfig(emu.kubeconfig()));
  EXPECT_FALSE(config.ca_data.empty());
  config.bearer_token = "wrong";
  ASSERT_OK_AND_ASSIGN(auto bad, CurlKubeClient::New(config));
  EXPECT_THAT(bad->Discover(), StatusIs(absl::StatusCode::kUnauthenticated));
}

}  // namespace
}  // namespace driftless::kube
