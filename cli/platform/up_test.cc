// `driftless up --detach` / `down` end to end with stand-in services (testing/
// standin_service.cc), the real nats-server and the real Kubernetes API emulator.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "absl/time/clock.h"
#include "cli/platform/io.h"
#include "cli/platform/layout.h"
#include "cli/platform/process.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace driftless::cli::platform {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

const std::string kCli = DRIFTLESS_BINARY_DIR "/cli/platform/driftless-platform-cli";
const std::string kStandin = DRIFTLESS_BINARY_DIR "/cli/platform/driftless-standin-service";
const std::string kEmulator = DRIFTLESS_BINARY_DIR "/tools/kube-emulator/driftless-kube-emulator";

// Gone for good: reaped if it was ours (orphans are re-parented to this test, a subreaper).
bool Gone(pid_t pid) {
  waitpid(pid, nullptr, WNOHANG);
  return kill(pid, 0) == -1 && errno == ESRCH;
}

bool GoneWithin(pid_t pid, absl::Duration d) {
  for (absl::Time deadline = absl::Now() + d; absl::Now() < deadline;) {
    if (Gone(pid)) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return Gone(pid);
}

class UpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Orphans of the detached supervisor become our children, so we can reap them and
    // `kill(pid, 0) == ESRCH` means gone (PID 1 of a container may never reap).
    ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    std::string tmpl = (std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") +
                       std::string("/up_test.XXXXXX");
    root_ = mkdtemp(tmpl.data());
    state_ = root_ + "/state";
    bin_ = root_ + "/bin";
    std::filesystem::create_directories(bin_);
    for (const std::string& svc : ServiceNames()) {
      std::filesystem::create_symlink(kStandin, bin_ + "/driftless-" + svc);
    }
    std::filesystem::create_symlink(kEmulator, bin_ + "/driftless-kube-emulator");
  }

  void TearDown() override {
    // Whatever happened, nothing survives the test: every pid ever recorded, by pid.
    if (absl::StatusOr<std::string> text = ReadFile(state_ + "/run/platform.json"); text.ok()) {
      if (auto r = DecodePlatformRecord(*text); r.ok()) {
        pids_.insert(r->supervisor.pid);
        for (const auto& [n, p] : r->children) pids_.insert(p.pid);
      }
    }
    for (pid_t pid : pids_) {
      if (pid > 0 && !Gone(pid)) {
        kill(pid, SIGKILL);
        GoneWithin(pid, absl::Seconds(5));
      }
    }
    std::filesystem::remove_all(root_);
  }

  // Runs the CLI to completion; returns its exit code, output in *output.
  int RunCli(std::vector<std::string> args, std::string* output) {
    args.insert(args.begin(), kCli);
    std::string log = root_ + "/cli-" + std::to_string(runs_++) + ".log";
    absl::StatusOr<pid_t> pid = Spawn({.argv = args,
                                       .log_path = log,
                                       .own_process_group = false,
                                       .extra_env = {"DRIFTLESS_BIN_DIR=" + bin_}});
    if (!pid.ok()) {
      ADD_FAILURE() << pid.status();
      return -1;
    }
    pids_.insert(*pid);
    int status = -1;
    for (absl::Time deadline = absl::Now() + absl::Seconds(120); absl::Now() < deadline;) {
      if (waitpid(*pid, &status, WNOHANG) == *pid) break;
      absl::SleepFor(absl::Milliseconds(20));
    }
    *output = ReadFile(log).value_or("");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  nlohmann::json ReadJson(const std::string& path) {
    absl::StatusOr<std::string> text = ReadFile(path);
    if (!text.ok()) return nullptr;
    return nlohmann::json::parse(*text, nullptr, false);
  }

  // Polls `url` until it answers 200.
  bool Serves(const std::string& url) {
    for (absl::Time deadline = absl::Now() + absl::Seconds(10); absl::Now() < deadline;) {
      absl::StatusOr<int> code = HttpGetStatus(url, absl::Seconds(2));
      if (code.ok() && *code == 200) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  std::string root_, state_, bin_;
  std::set<pid_t> pids_;
  int runs_ = 0;
};

TEST_F(UpTest, DetachedUpWritesLiveEndpointsRestartsChildrenAndDownStopsEverything) {
  std::string out;
  ASSERT_EQ(RunCli({"up", "--state-dir", state_, "--no-example", "--detach", "--timeout", "60s",
                    "--webhook-url", "http://127.0.0.1:9/hook"},
                   &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("nats-server ready"));
  EXPECT_THAT(out, HasSubstr("kube-emulator ready"));
  EXPECT_THAT(out, HasSubstr("api ready"));

  nlohmann::json platform = ReadJson(state_ + "/run/platform.json");
  ASSERT_TRUE(platform.is_object()) << "no platform.json";
  pid_t supervisor = platform["supervisor"]["pid"].get<pid_t>();
  pids_.insert(supervisor);
  std::map<std::string, pid_t> first_pids;
  for (const auto& [name, p] : platform["children"].items()) {
    first_pids[name] = p["pid"].get<pid_t>();
    pids_.insert(first_pids[name]);
  }
  ASSERT_EQ(first_pids.size(), 8u) << platform.dump();

  nlohmann::json endpoints = ReadJson(state_ + "/endpoints.json");
  ASSERT_TRUE(endpoints.is_object()) << "no endpoints.json";
  EXPECT_EQ(endpoints["stateDir"], state_);
  EXPECT_EQ(endpoints["kubeconfig"], state_ + "/kubeconfig");
  EXPECT_TRUE(std::filesystem::exists(state_ + "/kubeconfig"));
  EXPECT_THAT(endpoints["nats"].get<std::string>(), HasSubstr("nats://127.0.0.1:"));
  EXPECT_THAT(endpoints["api"].get<std::string>(), HasSubstr("127.0.0.1:"));
  EXPECT_THAT(endpoints["webhooks"].get<std::string>(), HasSubstr("/hooks"));
  EXPECT_TRUE(
      Serves(endpoints["natsMonitor"].get<std::string>() + "/healthz?js-enabled-only=true"));
  EXPECT_TRUE(Serves(endpoints["emulator"].get<std::string>() + "/readyz"));
  for (const std::string& svc : ServiceNames()) {
    const nlohmann::json& s = endpoints["services"][svc];
    ASSERT_TRUE(s.is_object()) << svc;
    EXPECT_EQ(s["pid"], first_pids[svc]);
    EXPECT_TRUE(Serves(s["ready"].get<std::string>())) << svc;
    EXPECT_TRUE(Serves(s["health"].get<std::string>())) << svc;
    EXPECT_EQ(s["log"], state_ + "/logs/" + svc + ".log");
  }
  // Service-specific flags reached the children.
  nlohmann::json notifier = ReadJson(state_ + "/run/notifier.ready");
  EXPECT_THAT(notifier["args"].get<std::vector<std::string>>(),
              Contains("http://127.0.0.1:9/hook"));
  nlohmann::json planner = ReadJson(state_ + "/run/planner.ready");
  EXPECT_THAT(planner["args"].get<std::vector<std::string>>(), Contains(state_ + "/kubeconfig"));

  // A second `up` on the same directory refuses.
  std::string second;
  EXPECT_EQ(RunCli({"up", "--state-dir", state_, "--no-example", "--detach"}, &second), 2);
  EXPECT_THAT(second, HasSubstr("already runs"));

  // A crashed child is restarted, on the same port, and endpoints.json follows.
  std::string renderer_ready = endpoints["services"]["renderer"]["ready"];
  ASSERT_EQ(kill(first_pids["renderer"], SIGKILL), 0);
  pid_t restarted = 0;
  for (absl::Time deadline = absl::Now() + absl::Seconds(30); absl::Now() < deadline;) {
    nlohmann::json e = ReadJson(state_ + "/endpoints.json");
    if (e.is_object() && e["services"]["renderer"].is_object()) {
      pid_t pid = e["services"]["renderer"]["pid"].get<pid_t>();
      if (pid != first_pids["renderer"] && pid > 0) {
        restarted = pid;
        pids_.insert(pid);
        EXPECT_EQ(e["services"]["renderer"]["ready"], renderer_ready);
        break;
      }
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_GT(restarted, 0) << "the renderer was not restarted; supervisor log:\n"
                          << Tail(state_ + "/logs/supervisor.log", 20);
  EXPECT_TRUE(Serves(renderer_ready));
  EXPECT_THAT(Tail(state_ + "/logs/supervisor.log", 20), HasSubstr("renderer"));

  // nats-server too, on the same ports and store.
  std::string nats_health =
      endpoints["natsMonitor"].get<std::string>() + "/healthz?js-enabled-only=true";
  ASSERT_EQ(kill(first_pids["nats-server"], SIGKILL), 0);
  pid_t nats_again = 0;
  for (absl::Time deadline = absl::Now() + absl::Seconds(30); absl::Now() < deadline;) {
    nlohmann::json p = ReadJson(state_ + "/run/platform.json");
    if (p.is_object() && p["children"].contains("nats-server")) {
      pid_t pid = p["children"]["nats-server"]["pid"].get<pid_t>();
      if (pid != first_pids["nats-server"]) {
        nats_again = pid;
        pids_.insert(pid);
        break;
      }
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_GT(nats_again, 0) << Tail(state_ + "/logs/supervisor.log", 20);
  EXPECT_TRUE(Serves(nats_health));

  std::string down;
  ASSERT_EQ(RunCli({"down", "--state-dir", state_}, &down), 0) << down;
  EXPECT_TRUE(GoneWithin(supervisor, absl::Seconds(30))) << "supervisor " << supervisor;
  EXPECT_TRUE(GoneWithin(nats_again, absl::Seconds(15)));
  for (const auto& [name, pid] : first_pids) {
    EXPECT_TRUE(GoneWithin(pid, absl::Seconds(15))) << name << " " << pid;
  }
  EXPECT_TRUE(GoneWithin(restarted, absl::Seconds(15)));
  EXPECT_FALSE(std::filesystem::exists(state_ + "/run/platform.json"));

  // Nothing running: down says so and succeeds.
  std::string again;
  EXPECT_EQ(RunCli({"down", "--state-dir", state_}, &again), 0);
  EXPECT_THAT(again, HasSubstr("not running"));
}

// Regression: `up --detach | head -2` closed the relay pipe early; the supervisor died of
// SIGPIPE and took the platform with it (PDEATHSIG).
TEST_F(UpTest, DetachedSupervisorSurvivesTheRelayGoingAway) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);  // else `up` inherits the read end
  absl::StatusOr<pid_t> up = Spawn(
      {.argv = {kCli, "up", "--state-dir", state_, "--no-example", "--detach", "--timeout", "60s"},
       .output_fd = fds[1],
       .own_process_group = false,
       .extra_env = {"DRIFTLESS_BIN_DIR=" + bin_}});
  close(fds[1]);
  ASSERT_OK(up.status());
  pids_.insert(*up);
  std::string seen;
  char buf[256];
  while (seen.find("nats-server ready") == std::string::npos) {
    ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n <= 0) break;
    seen.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);  // like `| head`: nobody reads the rest
  ASSERT_THAT(seen, HasSubstr("nats-server ready"));
  EXPECT_TRUE(GoneWithin(*up, absl::Seconds(30)));  // killed by SIGPIPE or exited

  // The platform still comes up completely and stays up.
  nlohmann::json endpoints;
  for (absl::Time deadline = absl::Now() + absl::Seconds(60); absl::Now() < deadline;) {
    endpoints = ReadJson(state_ + "/endpoints.json");
    if (endpoints.is_object()) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(endpoints.is_object()) << Tail(state_ + "/logs/supervisor.log", 20);
  nlohmann::json platform = ReadJson(state_ + "/run/platform.json");
  ASSERT_TRUE(platform.is_object());
  pid_t supervisor = platform["supervisor"]["pid"].get<pid_t>();
  pids_.insert(supervisor);
  for (const auto& [name, p] : platform["children"].items()) pids_.insert(p["pid"].get<pid_t>());
  EXPECT_TRUE(Serves(endpoints["services"]["api"]["ready"].get<std::string>()));
  EXPECT_FALSE(Gone(supervisor));
  EXPECT_THAT(Tail(state_ + "/logs/supervisor.log", 30), HasSubstr("api ready"));

  std::string down;
  EXPECT_EQ(RunCli({"down", "--state-dir", state_}, &down), 0) << down;
  EXPECT_TRUE(GoneWithin(supervisor, absl::Seconds(30)));
}

TEST_F(UpTest, ForegroundWithKubeconfigStopsEverythingOnSigint) {
  std::string kubeconfig = root_ + "/my-kubeconfig";
  std::ofstream(kubeconfig) << "apiVersion: v1\nkind: Config\n";
  std::string log = root_ + "/foreground.log";
  absl::StatusOr<pid_t> up = Spawn(
      {.argv = {kCli, "up", "--state-dir", state_, "--no-example", "--kubeconfig", kubeconfig},
       .log_path = log,
       .own_process_group = false,
       .extra_env = {"DRIFTLESS_BIN_DIR=" + bin_}});
  ASSERT_OK(up.status());
  pids_.insert(*up);
  nlohmann::json endpoints;
  for (absl::Time deadline = absl::Now() + absl::Seconds(60); absl::Now() < deadline;) {
    endpoints = ReadJson(state_ + "/endpoints.json");
    if (endpoints.is_object() && ReadFile(log).value_or("").find("Ctrl-C") != std::string::npos)
      break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(endpoints.is_object()) << ReadFile(log).value_or("");
  EXPECT_EQ(endpoints["kubeconfig"], kubeconfig);
  EXPECT_FALSE(endpoints.contains("emulator"));
  nlohmann::json planner = ReadJson(state_ + "/run/planner.ready");
  EXPECT_THAT(planner["args"].get<std::vector<std::string>>(), Contains(kubeconfig));
  nlohmann::json platform = ReadJson(state_ + "/run/platform.json");
  ASSERT_TRUE(platform.is_object());
  EXPECT_EQ(platform["supervisor"]["pid"], *up);
  EXPECT_FALSE(platform["children"].contains("kube-emulator"));
  std::vector<pid_t> children;
  for (const auto& [name, p] : platform["children"].items()) {
    children.push_back(p["pid"].get<pid_t>());
    pids_.insert(children.back());
  }
  ASSERT_EQ(children.size(), 7u);

  ASSERT_EQ(kill(*up, SIGINT), 0);  // what a terminal's Ctrl-C sends
  int status = -1;
  for (absl::Time deadline = absl::Now() + absl::Seconds(60); absl::Now() < deadline;) {
    if (waitpid(*up, &status, WNOHANG) == *up) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  for (pid_t pid : children) EXPECT_TRUE(GoneWithin(pid, absl::Seconds(5))) << pid;
  EXPECT_FALSE(std::filesystem::exists(state_ + "/run/platform.json"));
  EXPECT_THAT(ReadFile(log).value_or(""), HasSubstr("stopped"));
}

TEST_F(UpTest, ExampleRepositoryIsCommittedAndTheApplicationRegisteredAndAwaited) {
  std::string record = root_ + "/commands.txt";
  std::string log = root_ + "/example.log";
  absl::StatusOr<pid_t> up =
      Spawn({.argv = {kCli, "up", "--state-dir", state_, "--detach", "--timeout", "60s"},
             .log_path = log,
             .own_process_group = false,
             .extra_env = {"DRIFTLESS_BIN_DIR=" + bin_, "DRIFTLESS_TEST_RECORD=" + record}});
  ASSERT_OK(up.status());
  pids_.insert(*up);
  int status = -1;
  for (absl::Time deadline = absl::Now() + absl::Seconds(90); absl::Now() < deadline;) {
    if (waitpid(*up, &status, WNOHANG) == *up) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::string out = ReadFile(log).value_or("");
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  EXPECT_THAT(out, HasSubstr("guestbook synced and healthy"));
  nlohmann::json endpoints = ReadJson(state_ + "/endpoints.json");
  ASSERT_TRUE(endpoints.is_object());
  std::string api = endpoints["api"];

  // The example repository: guestbook/ committed on main.
  std::string repo = state_ + "/example-repo";
  std::string git_log = root_ + "/git.log";
  absl::StatusOr<pid_t> git =
      Spawn({.argv = {"/usr/bin/git", "-C", repo, "ls-tree", "-r", "--name-only", "main"},
             .log_path = git_log,
             .own_process_group = false});
  ASSERT_OK(git.status());
  ASSERT_TRUE(GoneWithin(*git, absl::Seconds(10)));
  std::string files = ReadFile(git_log).value_or("");
  EXPECT_THAT(files, HasSubstr("guestbook/deployment.yaml"));
  EXPECT_THAT(files, HasSubstr("guestbook/service.yaml"));

  // The Application points at it; apply and app wait ran against the api.
  std::string app_file = state_ + "/run/guestbook-application.yaml";
  EXPECT_THAT(ReadFile(app_file).value_or(""), HasSubstr("repoURL: file://" + repo + "\n"));
  std::string commands = ReadFile(record).value_or("");
  EXPECT_THAT(commands, HasSubstr("apply -f " + app_file + " --server " + api + "\n"));
  EXPECT_THAT(commands, HasSubstr("app wait guestbook --synced --healthy --timeout "));
  EXPECT_THAT(commands, HasSubstr("--server " + api));

  nlohmann::json platform = ReadJson(state_ + "/run/platform.json");
  ASSERT_TRUE(platform.is_object());
  pid_t supervisor = platform["supervisor"]["pid"].get<pid_t>();
  pids_.insert(supervisor);
  for (const auto& [name, p] : platform["children"].items()) pids_.insert(p["pid"].get<pid_t>());
  std::string down;
  EXPECT_EQ(RunCli({"down", "--state-dir", state_}, &down), 0) << down;
  EXPECT_TRUE(GoneWithin(supervisor, absl::Seconds(30)));
}

TEST_F(UpTest, MissingBinaryIsAClearError) {
  std::filesystem::remove(bin_ + "/driftless-planner");
  std::string out;
  // PATH must not find a real one either.
  EXPECT_EQ(RunCli({"up", "--state-dir", state_, "--no-example", "--detach"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("cannot find driftless-planner"));
  EXPECT_THAT(out, HasSubstr(bin_ + "/driftless-planner"));
  EXPECT_FALSE(std::filesystem::exists(state_ + "/run/platform.json"));
}

}  // namespace
}  // namespace driftless::cli::platform
