#include "cli/platform/platform.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/platform/io.h"
#include "cli/platform/layout.h"
#include "cli/platform/process.h"
#include "cli/platform/supervisor.h"
#include "common/config/shutdown_signal.h"
#include "common/config/units.h"
#include "common/status/status.h"
#include "common/strings/str.h"
#include "example_files.inc"
#include "services/renderer/generate.h"

namespace driftless::cli::platform {
namespace {

constexpr char kExitMarker[] = "@@exit ";
constexpr absl::Duration kStopGrace = absl::Seconds(10);

std::string Cwd() {
  std::error_code ec;
  std::string cwd = std::filesystem::current_path(ec).string();
  return ec ? "/" : cwd;
}

bool IsExecutableFile(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec) && access(path.c_str(), X_OK) == 0;
}

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// Every binary `up` runs, resolved before anything starts.
struct Binaries {
  std::string self;
  std::string nats;
  std::string emulator;  // empty with --kubeconfig
  std::map<std::string, std::string> services;
  std::string git;  // empty with --no-example
  // The renderer's helm 3 and kubectl (kustomize): scripts/install-deps puts them into the
  // repository's .tools/bin; empty when not found (the renderer then looks in PATH).
  std::string helm;
  std::string kubectl;
};

absl::StatusOr<Binaries> ResolveBinaries(const UpOptions& options) {
  Binaries b;
  DL_ASSIGN_OR_RETURN(b.self, SelfExecutable());
  std::string exe_dir = DirOf(b.self);
  const char* bin_dir = std::getenv("DRIFTLESS_BIN_DIR");
  const char* path = std::getenv("PATH");

  std::vector<std::string> nats_candidates;
  if (const char* n = std::getenv("DRIFTLESS_NATS_SERVER"); n != nullptr && *n) {
    nats_candidates.push_back(n);
  }
  nats_candidates.push_back("/usr/sbin/nats-server");
  for (const std::string& c : BinaryCandidates("nats-server", "", nullptr, "", path)) {
    nats_candidates.push_back(c);
  }
  if (options.nats_url.empty()) {
    DL_ASSIGN_OR_RETURN(b.nats, FindBinary("nats-server", nats_candidates, IsExecutableFile));
  }
  if (options.kubeconfig.empty()) {
    DL_ASSIGN_OR_RETURN(
        b.emulator, FindBinary("driftless-kube-emulator",
                               BinaryCandidates("driftless-kube-emulator", "tools/kube-emulator",
                                                bin_dir, exe_dir, path),
                               IsExecutableFile));
  }
  for (const std::string& svc : ServiceNames()) {
    std::string name = "driftless-" + svc;
    DL_ASSIGN_OR_RETURN(
        b.services[svc],
        FindBinary(name, BinaryCandidates(name, "services/" + svc, bin_dir, exe_dir, path),
                   IsExecutableFile));
  }
  const renderer::ToolPaths tools = renderer::DefaultToolPaths(exe_dir);
  b.helm = tools.helm;
  b.kubectl = tools.kubectl;
  if (!options.no_example) {
    DL_ASSIGN_OR_RETURN(
        b.git, FindBinary("git", BinaryCandidates("git", "", nullptr, "", path), IsExecutableFile));
  }
  return b;
}

// The platform recorded in DIR/run/platform.json, if its supervisor is still running.
std::optional<PlatformRecord> RunningPlatform(const Layout& layout) {
  absl::StatusOr<std::string> text = ReadFile(layout.PlatformFile());
  if (!text.ok()) return std::nullopt;
  absl::StatusOr<PlatformRecord> record = DecodePlatformRecord(*text);
  if (!record.ok()) return std::nullopt;
  if (!IsRunning(record->supervisor.pid, record->supervisor.start_time)) return std::nullopt;
  return *record;
}

// Writes progress lines: to the terminal (foreground), or to the supervisor's log (its
// stdout) and, until startup is over, through the pipe to the waiting `up --detach`.
class Progress {
 public:
  Progress(std::ostream* out, int pipe_fd) : out_(out), pipe_fd_(pipe_fd) {}
  void Say(const std::string& line) {
    if (pipe_fd_ >= 0 && !WriteFd(pipe_fd_, line + "\n")) {
      close(pipe_fd_);  // nobody relays any more
      pipe_fd_ = -1;
    }
    if (out_ != nullptr) {
      *out_ << line << std::endl;
    } else {
      std::string text = strings::Cat(
          absl::FormatTime("%Y-%m-%dT%H:%M:%SZ ", absl::Now(), absl::UTCTimeZone()), line, "\n");
      WriteFd(1, text);
    }
  }
  // Ends the detached startup: the waiting `up` exits with `code`.
  void Finish(int code) {
    if (pipe_fd_ < 0) return;
    WriteFd(pipe_fd_, strings::Cat(kExitMarker, code, "\n"));
    close(pipe_fd_);
    pipe_fd_ = -1;
  }
  int fd() const { return pipe_fd_ >= 0 ? pipe_fd_ : 1; }
  bool detached() const { return out_ == nullptr; }

 private:
  static bool WriteFd(int fd, const std::string& text) {
    const char* p = text.data();
    size_t n = text.size();
    while (n > 0) {
      ssize_t w = write(fd, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  std::ostream* out_;
  int pipe_fd_;
};

// Runs a command to completion with its output on `output_fd`, in the supervisor's process
// group (a Ctrl-C stops it too). Killed on shutdown. Returns its exit code.
absl::StatusOr<int> RunToCompletion(const std::vector<std::string>& argv, int output_fd,
                                    const std::string& cwd, config::ShutdownSignal* shutdown) {
  std::vector<std::string> args = argv;
  if (!cwd.empty()) {
    // git -C <cwd> ...: keeps Spawn free of chdir.
    args.insert(args.begin() + 1, {"-C", cwd});
  }
  DL_ASSIGN_OR_RETURN(pid_t pid, Spawn({.argv = args,
                                        .output_fd = output_fd,
                                        .own_process_group = false,
                                        .parent_death_signal = SIGTERM}));
  while (true) {
    if (std::optional<int> status = ReapIfExited(pid)) {
      if (WIFEXITED(*status)) return WEXITSTATUS(*status);
      return absl::AbortedError(strings::Cat(argv[0], " ", DescribeWaitStatus(*status)));
    }
    if (shutdown->WaitForShutdownFor(std::chrono::milliseconds(50))) {
      (void)StopProcess(pid, absl::Seconds(2));
      return absl::CancelledError(strings::Cat("interrupted while running ", argv[0]));
    }
  }
}

// DIR/example-repo: a git repository with guestbook/ committed on main (kept if present).
absl::Status CreateExampleRepo(const Layout& layout, const std::string& git, int output_fd,
                               config::ShutdownSignal* shutdown, Progress& progress) {
  std::string repo = layout.ExampleRepo();
  std::error_code ec;
  if (std::filesystem::exists(repo + "/.git", ec)) {
    progress.Say(strings::Cat("  example repository ", repo, " exists; keeping it"));
    return absl::OkStatus();
  }
  DL_RETURN_IF_ERROR(MakeDirs(repo + "/guestbook"));
  for (const EmbeddedFile& f : kGuestbookFiles) {
    DL_RETURN_IF_ERROR(WriteFileAtomic(strings::Cat(repo, "/guestbook/", f.name), f.content));
  }
  const std::vector<std::vector<std::string>> steps = {
      {git, "init", "-q", "-b", "main"},
      {git, "add", "guestbook"},
      {git, "-c", "user.name=driftless", "-c", "user.email=driftless@localhost", "-c",
       "commit.gpgsign=false", "commit", "-q", "-m", "guestbook example"},
  };
  for (const auto& step : steps) {
    DL_ASSIGN_OR_RETURN(int code, RunToCompletion(step, output_fd, repo, shutdown));
    if (code != 0) {
      return absl::InternalError(
          strings::Cat("git ", step[1], " in ", repo, " failed (exit ", code, ")"));
    }
  }
  progress.Say(strings::Cat("\xE2\x9C\x93 example repository ", repo, " (branch main)"));
  return absl::OkStatus();
}

// One `up` run: the supervisor process's whole life.
class Platform {
 public:
  Platform(UpOptions options, Layout layout, Binaries binaries, Progress* progress)
      : options_(std::move(options)),
        layout_(std::move(layout)),
        binaries_(std::move(binaries)),
        progress_(progress) {}

  int Run() {
    absl::StatusOr<std::unique_ptr<config::ShutdownSignal>> shutdown =
        config::ShutdownSignal::Install();
    if (!shutdown.ok()) return Fail(shutdown.status());
    shutdown_ = std::move(*shutdown);
    supervisor_ = std::make_unique<Supervisor>(
        shutdown_.get(), [this](const std::string& line) { progress_->Say(line); });

    absl::Status started = StartAll();
    if (!started.ok()) {
      supervisor_->StopAll(kStopGrace);
      std::remove(layout_.PlatformFile().c_str());
      if (started.code() == absl::StatusCode::kCancelled) {
        progress_->Say("interrupted; stopped everything");
        progress_->Finish(1);  // a detached startup that was stopped did not succeed
        return progress_->detached() ? 1 : 0;
      }
      return Fail(started);
    }

    int code = 0;
    if (!options_.no_example) {
      absl::Status example = SyncExample();
      if (!example.ok()) {
        if (example.code() == absl::StatusCode::kCancelled) return Shutdown(0);
        progress_->Say(strings::Cat("! the example application did not sync: ", example.message()));
        progress_->Say(
            strings::Cat("  the platform keeps running; logs are in ", layout_.LogsDir()));
        code = 1;
      }
    }
    PrintSummary();
    progress_->Finish(code);
    supervisor_->Supervise([this] {
      if (absl::Status s = SaveState(); !s.ok()) progress_->Say(strings::Cat("! ", s.message()));
    });
    return Shutdown(0);
  }

 private:
  int Fail(const absl::Status& status) {
    progress_->Say(strings::Cat("error: ", status.message()));
    progress_->Finish(1);
    return 1;
  }

  int Shutdown(int code) {
    progress_->Say("stopping the platform");
    supervisor_->StopAll(kStopGrace);
    std::remove(layout_.PlatformFile().c_str());
    progress_->Say("stopped");
    return code;
  }

  absl::Time Deadline() const { return start_ + absl::FromChrono(options_.timeout); }

  absl::Status StartAll() {
    start_ = absl::Now();
    for (const std::string& d : {layout_.NatsDir(), layout_.LogsDir(), layout_.RunDir()}) {
      DL_RETURN_IF_ERROR(MakeDirs(d));
    }
    for (const std::string& svc : ServiceNames())
      DL_RETURN_IF_ERROR(MakeDirs(layout_.ServiceStateDir(svc)));
    record_.state_dir = layout_.dir;
    record_.supervisor = {.pid = getpid(), .start_time = ProcessStartTime(getpid()).value_or(0)};
    DL_RETURN_IF_ERROR(SaveRecord());

    // 1. nats-server, unless the platform runs on given NATS servers (e.g. a cluster).
    if (!options_.nats_url.empty()) {
      nats_url_ = options_.nats_url;
      progress_->Say(strings::Cat("  using NATS at ", nats_url_, " (", options_.nats_replicas,
                                  options_.nats_replicas == 1 ? " replica" : " replicas", ")"));
      return StartEmulator();
    }
    DL_ASSIGN_OR_RETURN(ports_.nats_port, FreePort());
    DL_ASSIGN_OR_RETURN(ports_.nats_monitor_port, FreePort());
    while (ports_.nats_monitor_port == ports_.nats_port) {
      DL_ASSIGN_OR_RETURN(ports_.nats_monitor_port, FreePort());
    }
    nats_url_ = strings::Cat("nats://127.0.0.1:", ports_.nats_port);
    nats_monitor_ = strings::Cat("http://127.0.0.1:", ports_.nats_monitor_port);
    supervisor_->Add({.name = kNatsName,
                      .argv = [this] { return NatsArgs(binaries_.nats, layout_, ports_); },
                      .probe = [this]() -> absl::Status {
                        DL_ASSIGN_OR_RETURN(
                            int code, HttpGetStatus(nats_monitor_ + "/healthz?js-enabled-only=true",
                                                    absl::Seconds(2)));
                        if (code != 200)
                          return absl::UnavailableError(strings::Cat("healthz answered ", code));
                        return absl::OkStatus();
                      },
                      .log_path = layout_.Log(kNatsName)});
    DL_RETURN_IF_ERROR(StartAndWait(kNatsName));
    progress_->Say(strings::Cat("\xE2\x9C\x93 nats-server ready (", nats_url_, ", JetStream in ",
                                layout_.NatsDir(), ")"));
    return StartEmulator();
  }

  // 2. The Kubernetes API emulator, unless a kubeconfig was given.
  absl::Status StartEmulator() {
    if (options_.kubeconfig.empty()) {
      kubeconfig_ = layout_.Kubeconfig();
      supervisor_->Add({.name = kEmulatorName,
                        .argv =
                            [this] {
                              return EmulatorArgs(binaries_.emulator, layout_,
                                                  PortOf(emulator_url_), options_.emulator_args);
                            },
                        .probe = [this] { return ProbeEmulator(); },
                        .on_failed_start = [this] { emulator_url_.clear(); },
                        .log_path = layout_.Log(kEmulatorName),
                        .ready_file = layout_.ReadyFile("emulator")});
      DL_RETURN_IF_ERROR(StartAndWait(kEmulatorName));
      progress_->Say(strings::Cat("\xE2\x9C\x93 kube-emulator ready (", emulator_url_,
                                  ", kubeconfig ", kubeconfig_, ")"));
    } else {
      std::error_code ec;
      kubeconfig_ = std::filesystem::absolute(options_.kubeconfig, ec).string();
      progress_->Say(strings::Cat("  using the cluster of ", kubeconfig_));
    }

    // 3. The services: all started at once, then waited for in order.
    for (const std::string& svc : ServiceNames()) {
      supervisor_->Add({.name = svc,
                        .argv = [this, svc] { return ServiceArgv(svc); },
                        .probe = [this, svc] { return ProbeService(svc); },
                        .on_ready = [this, svc] { services_[svc] = pending_[svc]; },
                        .on_failed_start = [this, svc] { services_.erase(svc); },
                        .log_path = layout_.Log(svc),
                        .ready_file = layout_.ReadyFile(svc)});
      DL_RETURN_IF_ERROR(supervisor_->Start(svc));
    }
    DL_RETURN_IF_ERROR(SaveRecord());
    for (const std::string& svc : ServiceNames()) {
      DL_RETURN_IF_ERROR(supervisor_->WaitReady(svc, Deadline()));
      progress_->Say(strings::Cat("\xE2\x9C\x93 ", svc, " ready (", services_[svc].http, ")"));
    }
    return SaveState();
  }

  absl::Status StartAndWait(const std::string& name) {
    DL_RETURN_IF_ERROR(supervisor_->Start(name));
    DL_RETURN_IF_ERROR(SaveRecord());
    return supervisor_->WaitReady(name, Deadline());
  }

  std::vector<std::string> ServiceArgv(const std::string& svc) {
    ServiceArgsInput in{.nats_url = nats_url_,
                        .nats_replicas = options_.nats_replicas,
                        .kubeconfig = kubeconfig_,
                        .webhook_urls = options_.webhook_urls,
                        .helm = binaries_.helm,
                        .kubectl = binaries_.kubectl};
    // A restart keeps the ports the service had, so endpoints stay valid.
    if (auto it = services_.find(svc); it != services_.end()) {
      in.http_port = PortOf(it->second.http);
      in.grpc_port = PortOf(it->second.grpc);
    }
    return ServiceArgs(binaries_.services.at(svc), svc, layout_, in);
  }

  absl::Status ProbeEmulator() {
    absl::StatusOr<std::string> ready = ReadFile(layout_.ReadyFile("emulator"));
    if (!ready.ok()) return absl::UnavailableError("no ready file yet");
    std::string url(ready->substr(0, ready->find_first_of("\r\n")));
    if (url.empty()) return absl::UnavailableError("empty ready file");
    std::error_code ec;
    if (!std::filesystem::exists(kubeconfig_, ec))
      return absl::UnavailableError("no kubeconfig yet");
    DL_ASSIGN_OR_RETURN(int code, HttpGetStatus(url + "/readyz", absl::Seconds(2)));
    if (code != 200) return absl::UnavailableError(strings::Cat("readyz answered ", code));
    emulator_url_ = url;
    return absl::OkStatus();
  }

  absl::Status ProbeService(const std::string& svc) {
    absl::StatusOr<std::string> text = ReadFile(layout_.ReadyFile(svc));
    if (!text.ok()) return absl::UnavailableError("no ready file yet");
    DL_ASSIGN_OR_RETURN(ReadyInfo info, ParseServiceReadyFile(*text));
    if (svc == "api" && info.grpc.empty()) {
      return absl::UnavailableError("the api's ready file has no \"grpc\"");
    }
    DL_ASSIGN_OR_RETURN(int code, HttpGetStatus(info.http + "/readyz", absl::Seconds(2)));
    if (code != 200) return absl::UnavailableError(strings::Cat("readyz answered ", code));
    pending_[svc] = info;
    return absl::OkStatus();
  }

  absl::Status SaveRecord() {
    record_.children = supervisor_->Pids();
    return WriteFileAtomic(layout_.PlatformFile(), EncodePlatformRecord(record_));
  }

  absl::Status SaveState() {
    DL_RETURN_IF_ERROR(SaveRecord());
    Endpoints e{.state_dir = layout_.dir,
                .nats_url = nats_url_,
                .nats_monitor = nats_monitor_,
                .kubeconfig = kubeconfig_,
                .emulator = emulator_url_,
                .pids = record_.children,
                .services = services_};
    return WriteFileAtomic(layout_.Endpoints(), EndpointsJson(e, layout_).dump(2) + "\n");
  }

  std::string Api() const {
    auto it = services_.find("api");
    return it == services_.end() ? "" : it->second.grpc;
  }

  absl::Status SyncExample() {
    DL_RETURN_IF_ERROR(
        CreateExampleRepo(layout_, binaries_.git, progress_->fd(), shutdown_.get(), *progress_));
    DL_ASSIGN_OR_RETURN(std::string app,
                        WithRepoUrl(kGuestbookApplication, "file://" + layout_.ExampleRepo()));
    std::string app_file = layout_.RunDir() + "/guestbook-application.yaml";
    DL_RETURN_IF_ERROR(WriteFileAtomic(app_file, app));
    progress_->Say("  registering the example application guestbook");
    DL_ASSIGN_OR_RETURN(
        int code, RunToCompletion({binaries_.self, "apply", "-f", app_file, "--server", Api()},
                                  progress_->fd(), "", shutdown_.get()));
    if (code != 0) return absl::InternalError(strings::Cat("`driftless apply` exited ", code));
    absl::Duration left = std::max(Deadline() - absl::Now(), absl::Seconds(30));
    std::string timeout = config::FormatDuration(absl::ToChronoMilliseconds(left));
    progress_->Say(
        strings::Cat("  waiting up to ", timeout, " for guestbook to be synced and healthy"));
    DL_ASSIGN_OR_RETURN(
        code, RunToCompletion({binaries_.self, "app", "wait", "guestbook", "--synced", "--healthy",
                               "--timeout", timeout, "--server", Api()},
                              progress_->fd(), "", shutdown_.get()));
    if (code != 0) return absl::InternalError(strings::Cat("`driftless app wait` exited ", code));
    progress_->Say("\xE2\x9C\x93 guestbook synced and healthy");
    return absl::OkStatus();
  }

  void PrintSummary() {
    auto say = [this](const std::string& s) { progress_->Say(s); };
    say("");
    say(strings::Cat("driftless is up (state in ", layout_.dir, ", endpoints in ",
                     layout_.Endpoints(), ")"));
    say(strings::Cat("  API:       ", Api()));
    auto api = services_.find("api");
    if (api != services_.end())
      say(strings::Cat("  webhooks:  ", api->second.webhooks, "/<receiver>"));
    say(strings::Cat("  NATS:      ", nats_url_));
    say(strings::Cat("  logs:      ", layout_.LogsDir(), "/"));
    say("");
    say(strings::Cat("  export DRIFTLESS_SERVER=", Api()));
    say("  driftless get apps");
    say(strings::Cat("  kubectl --kubeconfig ", kubeconfig_, " get all -n guestbook"));
    say(strings::Cat("  driftless down --state-dir ", layout_.dir));
    if (!progress_->detached()) say("Supervising; press Ctrl-C to stop everything.");
  }

  UpOptions options_;
  Layout layout_;
  Binaries binaries_;
  Progress* progress_;
  std::unique_ptr<config::ShutdownSignal> shutdown_;
  std::unique_ptr<Supervisor> supervisor_;
  absl::Time start_;
  PlatformRecord record_;
  PlatformPorts ports_;
  std::string nats_url_;
  std::string nats_monitor_;
  std::string kubeconfig_;
  std::string emulator_url_;
  std::map<std::string, ReadyInfo> services_;  // ready services
  std::map<std::string, ReadyInfo> pending_;   // last successful probe
};

// The parent side of --detach: relays the supervisor's progress, returns its startup result.
int RelayDetached(int read_fd, std::ostream& out) {
  std::string buffer;
  char chunk[4096];
  int code = -1;
  while (true) {
    ssize_t n = read(read_fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer.append(chunk, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buffer.find('\n')) != std::string::npos) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      if (line.rfind(kExitMarker, 0) == 0) {
        code = std::atoi(line.c_str() + strlen(kExitMarker));
      } else {
        out << line << std::endl;
      }
    }
  }
  close(read_fd);
  if (!buffer.empty()) out << buffer << std::endl;
  if (code < 0) {
    out << "error: the supervisor exited during startup" << std::endl;
    return 1;
  }
  return code;
}

}  // namespace

int RunUp(const UpOptions& options, std::ostream& out, std::ostream& err) {
  Layout layout =
      Layout::For(ResolveStateDir(options.state_dir, std::getenv("DRIFTLESS_STATE_DIR"), Cwd()));
  if (std::optional<PlatformRecord> running = RunningPlatform(layout)) {
    err << "error: driftless already runs on " << layout.dir << " (supervisor pid "
        << running->supervisor.pid << "); stop it with `driftless down --state-dir " << layout.dir
        << "`" << std::endl;
    return 2;
  }
  if (!options.kubeconfig.empty() && !std::filesystem::exists(options.kubeconfig)) {
    err << "error: --kubeconfig " << options.kubeconfig << " does not exist" << std::endl;
    return 1;
  }
  absl::StatusOr<Binaries> binaries = ResolveBinaries(options);
  if (!binaries.ok()) {
    err << "error: " << binaries.status().message() << std::endl;
    return 1;
  }
  for (const std::string& d : {layout.dir, layout.LogsDir(), layout.RunDir()}) {
    if (absl::Status s = MakeDirs(d); !s.ok()) {
      err << "error: " << s.message() << std::endl;
      return 1;
    }
  }

  if (!options.detach) {
    Progress progress(&out, -1);
    out << "Starting driftless in " << layout.dir << std::endl;
    return Platform(options, layout, *std::move(binaries), &progress).Run();
  }

  // --detach: fork now, while this process has a single thread; the grandchild (a session
  // leader's child, reparented to init) becomes the supervisor.
  out << "Starting driftless in " << layout.dir << " (detached)" << std::endl;
  out.flush();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    err << "error: pipe: " << strerror(errno) << std::endl;
    return 1;
  }
  pid_t first = fork();
  if (first < 0) {
    err << "error: fork: " << strerror(errno) << std::endl;
    return 1;
  }
  if (first > 0) {
    close(fds[1]);
    int status = 0;
    waitpid(first, &status, 0);
    return RelayDetached(fds[0], out);
  }
  close(fds[0]);
  setsid();
  // The relaying `up` may go away (its stdout closed, `| head`): writes to the pipe must then
  // fail with EPIPE instead of killing the supervisor and, through PDEATHSIG, the platform.
  signal(SIGPIPE, SIG_IGN);
  pid_t second = fork();
  if (second != 0) _exit(second < 0 ? 1 : 0);
  int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd >= 0) dup2(null_fd, 0);
  int log_fd =
      open(layout.Log("supervisor").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd >= 0) {
    dup2(log_fd, 1);
    dup2(log_fd, 2);
  }
  Progress progress(nullptr, fds[1]);
  int code = Platform(options, layout, *std::move(binaries), &progress).Run();
  std::cout.flush();
  _exit(code);
}

int RunDown(const DownOptions& options, std::ostream& out, std::ostream& err) {
  Layout layout =
      Layout::For(ResolveStateDir(options.state_dir, std::getenv("DRIFTLESS_STATE_DIR"), Cwd()));
  absl::StatusOr<std::string> text = ReadFile(layout.PlatformFile());
  if (!text.ok()) {
    out << "driftless is not running on " << layout.dir << std::endl;
    return 0;
  }
  absl::StatusOr<PlatformRecord> record = DecodePlatformRecord(*text);
  if (!record.ok()) {
    err << "error: " << layout.PlatformFile() << ": " << record.status().message() << std::endl;
    return 1;
  }
  bool any = IsRunning(record->supervisor.pid, record->supervisor.start_time);
  for (const auto& [name, p] : record->children) any = any || IsRunning(p.pid, p.start_time);
  if (!any) {
    std::remove(layout.PlatformFile().c_str());
    out << "driftless is not running on " << layout.dir << " (removed a stale "
        << layout.PlatformFile() << ")" << std::endl;
    return 0;
  }
  int code = 0;
  if (IsRunning(record->supervisor.pid, record->supervisor.start_time)) {
    out << "stopping the supervisor (pid " << record->supervisor.pid << ")" << std::endl;
    if (absl::Status s = StopProcess(record->supervisor.pid, absl::FromChrono(options.timeout),
                                     record->supervisor.start_time);
        !s.ok()) {
      err << "error: " << s.message() << std::endl;
      code = 1;
    }
  }
  // Children the supervisor did not stop (it was killed, or timed out): reverse start order.
  std::vector<std::string> names(ServiceNames().rbegin(), ServiceNames().rend());
  names.insert(names.end(), {kEmulatorName, kNatsName});
  std::vector<std::pair<std::string, ProcessRecord>> order;
  for (const std::string& name : names) {
    if (auto it = record->children.find(name); it != record->children.end())
      order.emplace_back(*it);
  }
  for (const auto& [name, p] : order) {
    if (!IsRunning(p.pid, p.start_time)) continue;
    out << "stopping " << name << " (pid " << p.pid << ")" << std::endl;
    if (absl::Status s = StopProcess(p.pid, kStopGrace, p.start_time); !s.ok()) {
      err << "error: " << name << ": " << s.message() << std::endl;
      code = 1;
    }
  }
  std::remove(layout.PlatformFile().c_str());
  if (code == 0) out << "driftless stopped (" << layout.dir << ")" << std::endl;
  return code;
}

}  // namespace driftless::cli::platform
