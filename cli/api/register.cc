// The API commands of `driftless` (gRPC client of driftless-api):
//
//   driftless apply -f FILE [-f FILE...] [--dry-run]
//   driftless get apps [--project P] [--name GLOB] [--limit|--chunk-size N] [-o json|yaml]
//   driftless get app NAME [-o json|yaml]
//   driftless get projects|clusters|repositories|notificationproviders|alerts|receivers
//                 [-o json|yaml]
//   driftless app sync NAME [--revision R] [--resource KIND/[NAMESPACE/]NAME...] [--prune]
//                           [--dry-run]
//   driftless app wait NAME [--synced] [--healthy] [--for-revision SHA] [--timeout 60s]
//   driftless app delete NAME [--cascade [--wait] [--timeout 60s]] [--ignore-not-found]
//   driftless events [--app NAME] [--type T...] [--since 10m | --from-sequence N] [--follow]
//                    [-o json]
//   driftless dlq list [--from-sequence N] [--limit|--chunk-size N] [-o json|yaml]
//   driftless dlq redrive SEQ [SEQ...]
//   driftless notifications log [--app NAME] [--provider P] [--since 2h] [--limit N] [-o json]
//
// Every command takes --server (else $DRIFTLESS_SERVER, endpoints.json, 127.0.0.1:7070; see
// client.h). Errors print "error: <message>" to stderr and exit 1.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include <CLI/CLI.hpp>

#include "absl/functional/function_ref.h"
#include "absl/time/clock.h"
#include "cli/api/client.h"
#include "cli/api/format.h"
#include "cli/commands.h"
#include "common/config/units.h"
#include "common/resources/resources.h"
#include "common/strings/str.h"

namespace driftless::cli {
namespace {

int Fail(const absl::Status& status) {
  std::cerr << "error: " << status.message() << "\n";
  return 1;
}

void AddServerFlag(CLI::App* cmd, std::string* server) {
  cmd->add_option("--server", *server,
                  "driftless-api gRPC address (default: $DRIFTLESS_SERVER, the api entry of "
                  "$DRIFTLESS_STATE_DIR/endpoints.json, or 127.0.0.1:7070)");
}

void AddOutputFlag(CLI::App* cmd, std::string* output) {
  cmd->add_option("-o,--output", *output, "json or yaml (default: a human summary)")
      ->check(CLI::IsMember({"json", "yaml"}));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::stringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
    return text.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(strings::Cat("cannot read ", path));
  text << in.rdbuf();
  return text.str();
}

// The text to send for one file: validated here first (so errors name the file and line),
// with `<secret>File: path` fields read relative to the file and inlined. Unchanged when
// there is nothing to inline, so the server's errors keep the file's line numbers.
absl::StatusOr<std::string> PrepareApply(const std::string& path, const std::string& text) {
  absl::StatusOr<std::vector<resources::Resource>> parsed = resources::ParseResources(text, path);
  if (!parsed.ok()) return parsed.status();
  std::filesystem::path base =
      path == "-" ? std::filesystem::current_path() : std::filesystem::path(path).parent_path();
  bool inlined = false;
  std::vector<manifest::Json> objects;
  for (resources::Resource& r : *parsed) {
    manifest::Json object = r.object;
    absl::Status s = resources::ResolveSecretFiles(object, [&](const std::string& file) {
      std::filesystem::path p(file);
      return ReadFile((p.is_absolute() ? p : base / p).string());
    });
    if (!s.ok()) return s;
    inlined = inlined || object != r.object;
    objects.push_back(std::move(object));
  }
  return inlined ? manifest::ToYamlStream(objects) : text;
}

int RunApply(const std::vector<std::string>& files, bool dry_run, const std::string& server) {
  auto client = ApiClient::Connect(ResolveServerAddress(server));
  for (const std::string& file : files) {
    absl::StatusOr<std::string> text = ReadFile(file);
    if (!text.ok()) return Fail(text.status());
    absl::StatusOr<std::string> yaml = PrepareApply(file, *text);
    if (!yaml.ok()) return Fail(yaml.status());
    absl::StatusOr<v1::ApplyResponse> response = client->Apply(*yaml, dry_run);
    if (!response.ok()) {
      std::string message(response.status().message());
      // The server names the request "<request>"; the user knows it as the file.
      for (size_t at = message.find("<request>"); at != std::string::npos;
           at = message.find("<request>", at + file.size())) {
        message.replace(at, 9, file);
      }
      return Fail(absl::Status(response.status().code(), message));
    }
    for (const v1::ApplyResult& result : response->results()) {
      std::cout << ApplyLine(result) << (dry_run ? " (dry run)" : "") << "\n";
    }
  }
  return 0;
}

int PrintJson(const absl::StatusOr<manifest::Json>& json, const std::string& output) {
  if (!json.ok()) return Fail(json.status());
  if (output == "json") {
    std::cout << json->dump(2) << "\n";
  } else {
    std::cout << manifest::ToYaml(*json);
  }
  return 0;
}

struct GetOptions {
  std::string server;
  std::string output;
  std::string name;
  std::string project;
  std::string name_pattern;
  int page_size = 0;  // 0: the server's default
};

// --limit / --chunk-size (kubectl's name): the page size of List calls; the command still
// shows everything, one page after the other.
void AddPageSizeFlag(CLI::App* cmd, int* page_size, const std::string& server_default) {
  cmd->add_option(
         "--limit,--chunk-size", *page_size,
         "Items per API call (pages are followed; default " + server_default + ", at most 1000)")
      ->check(CLI::NonNegativeNumber);
}

int RunGetApps(const GetOptions& o) {
  auto client = ApiClient::Connect(ResolveServerAddress(o.server));
  absl::StatusOr<std::vector<v1::Application>> apps =
      client->List(o.project, o.name_pattern, o.page_size);
  if (!apps.ok()) return Fail(apps.status());
  if (!o.output.empty()) return PrintJson(ApplicationListJson(*apps), o.output);
  if (apps->empty()) {
    std::cerr << "No applications found.\n";
    return 0;
  }
  std::cout << AppsTable(*apps);
  return 0;
}

int RunGetApp(const GetOptions& o) {
  auto client = ApiClient::Connect(ResolveServerAddress(o.server));
  absl::StatusOr<v1::Application> app = client->Get(o.name);
  if (!app.ok()) return Fail(app.status());
  if (!o.output.empty()) return PrintJson(ApplicationJson(*app), o.output);
  std::cout << DescribeApplication(*app);
  return 0;
}

int RunGetResources(const std::string& kind, const GetOptions& o) {
  auto client = ApiClient::Connect(ResolveServerAddress(o.server));
  absl::StatusOr<std::vector<v1::Resource>> list = client->ListResources(kind);
  if (!list.ok()) return Fail(list.status());
  if (!o.output.empty()) return PrintJson(ResourceListJson(*list), o.output);
  if (list->empty()) {
    std::cerr << "No " << KindPlural(kind) << " found.\n";
    return 0;
  }
  std::cout << ResourcesTable(*list);
  return 0;
}

struct AppOptions {
  std::string server;
  std::string name;
  // sync
  std::string revision;
  std::vector<std::string> resources;
  bool prune = false;
  bool dry_run = false;
  // wait
  WaitConditions wait;
  std::string timeout = "60s";
  // delete
  bool cascade = false;
  bool wait_deleted = false;
  bool ignore_not_found = false;
  // sync, rollback
  std::string reason;
  // history
  std::string output;
  // rollback
  int64_t id = 0;
  bool force = false;
};

// Calls `step` every 200 ms until it returns an exit code, or `deadline` passes (nullopt).
std::optional<int> PollUntil(absl::Time deadline, absl::FunctionRef<std::optional<int>()> step) {
  while (true) {
    if (std::optional<int> code = step()) return code;
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(std::min(absl::Milliseconds(200), deadline - absl::Now()));
  }
}

int RunSync(const AppOptions& o) {
  auto client = ApiClient::Connect(ResolveServerAddress(o.server));
  v1::SyncApplicationRequest request;
  request.set_name(o.name);
  request.set_revision(o.revision);
  for (const std::string& text : o.resources) {
    absl::StatusOr<v1::ObjectRef> ref = ParseObjectRef(text);
    if (!ref.ok()) return Fail(ref.status());
    *request.add_resources() = *std::move(ref);
  }
  request.set_prune(o.prune);
  request.set_dry_run(o.dry_run);
  request.set_reason(o.reason);
  absl::StatusOr<std::string> sync_id = client->Sync(request);
  if (!sync_id.ok()) return Fail(sync_id.status());
  std::cout << *sync_id << "\n";
  return 0;
}

std::string Describe(const WaitConditions& c) {
  std::vector<std::string> parts;
  if (c.synced) parts.push_back("synced");
  if (c.healthy) parts.push_back("healthy");
  if (!c.for_revision.empty()) parts.push_back("at revision " + c.for_revision);
  if (parts.empty()) return "exist";
  std::string out = "be ";
  for (size_t i = 0; i < parts.size(); ++i) out += (i == 0 ? "" : " and ") + parts[i];
  return out;
}

int RunWait(const AppOptions& o) {
  absl::StatusOr<std::chrono::milliseconds> timeout = config::ParseDuration(o.timeout);
  if (!timeout.ok()) return Fail(Annotate(timeout.status(), "--timeout"));
  auto client = ApiClient::Connect(ResolveServerAddress(o.server), absl::Seconds(5));
  const absl::Time deadline = absl::Now() + absl::FromChrono(*timeout);
  std::optional<v1::Application> last;
  absl::Status last_error;
  std::optional<int> code = PollUntil(deadline, [&]() -> std::optional<int> {
    absl::StatusOr<v1::Application> app = client->Get(o.name);
    if (!app.ok()) {
      last_error = app.status();
      // Not registered yet, or the server is (re)starting: keep waiting. Anything else is
      // an answer that waiting will not change.
      if (!absl::IsNotFound(last_error) && !absl::IsUnavailable(last_error) &&
          !absl::IsDeadlineExceeded(last_error)) {
        return Fail(last_error);
      }
      return std::nullopt;
    }
    last = *app;
    last_error = absl::OkStatus();
    if (!WaitSatisfied(*app, o.wait)) return std::nullopt;
    const v1::AppStatus& s = app->status();
    std::cout << "application " << o.name << ": " << SyncName(s.sync()) << ", "
              << HealthName(s.health())
              << (s.last_applied_revision().empty()
                      ? std::string()
                      : ", revision " + s.last_applied_revision().substr(0, 7))
              << "\n";
    return 0;
  });
  if (code.has_value()) return *code;
  std::cerr << "error: timed out after " << config::FormatDuration(*timeout)
            << " waiting for application " << o.name << " to " << Describe(o.wait) << "\n";
  if (!last_error.ok()) std::cerr << "last error: " << last_error.message() << "\n";
  if (last.has_value()) std::cerr << WaitSummary(*last);
  return 1;
}

int RunDelete(const AppOptions& o) {
  absl::StatusOr<std::chrono::milliseconds> timeout = config::ParseDuration(o.timeout);
  if (!timeout.ok()) return Fail(Annotate(timeout.status(), "--timeout"));
  auto client = ApiClient::Connect(ResolveServerAddress(o.server));
  absl::Status s = client->Delete(o.name, o.cascade);
  // As kubectl's --ignore-not-found: an application already gone (say, its cascade deletion
  // finished meanwhile) is what the caller asked for.
  if (absl::IsNotFound(s) && o.ignore_not_found) return 0;
  if (!s.ok()) return Fail(s);
  if (!o.cascade || !o.wait_deleted) {
    std::cout << "application.driftless.dev/" << o.name << " deleted"
              << (o.cascade ? " (its objects are being pruned)" : "") << "\n";
    return 0;
  }
  // A cascade deletion ends when the applier has pruned every object and removed it.
  const absl::Time deadline = absl::Now() + absl::FromChrono(*timeout);
  std::string message;
  std::optional<int> code = PollUntil(deadline, [&]() -> std::optional<int> {
    absl::StatusOr<v1::Application> app = client->Get(o.name);
    if (absl::IsNotFound(app.status())) {
      std::cout << "application.driftless.dev/" << o.name << " deleted (its objects pruned)\n";
      return 0;
    }
    if (app.ok()) message = app->status().message();
    return std::nullopt;
  });
  if (code.has_value()) return *code;
  std::cerr << "error: timed out after " << config::FormatDuration(*timeout)
            << " waiting for application " << o.name << " to be deleted"
            << (message.empty() ? "" : ": " + message) << "\n";
  return 1;
}

struct EventsOptions {
  std::string server;
  std::string application;
  std::vector<std::string> types;
  bool follow = false;
  std::string output;
  std::string since;           // a duration: events stored at or after now - since
  uint64_t from_sequence = 0;  // 0: not set
};

// How long a non-follow `events` waits for the next stored event before it assumes it has
// seen them all (the API streams history and live events alike).
constexpr absl::Duration kHistoryIdle = absl::Seconds(1);

int RunEvents(const EventsOptions& o) {
  auto client = ApiClient::Connect(ResolveServerAddress(o.server));
  v1::WatchEventsRequest request;
  request.set_application(o.application);
  for (const std::string& t : o.types) request.add_types(t);
  request.set_include_history(true);
  if (!o.since.empty()) {
    absl::StatusOr<std::chrono::milliseconds> since = config::ParseDuration(o.since);
    if (!since.ok()) return Fail(Annotate(since.status(), "--since"));
    const absl::Time start = absl::Now() - absl::FromChrono(*since);
    request.mutable_start_time()->set_seconds(absl::ToUnixSeconds(start));
    request.mutable_start_time()->set_nanos(
        static_cast<int32_t>(absl::ToUnixNanos(start) - absl::ToUnixSeconds(start) * 1000000000));
  } else if (o.from_sequence > 0) {
    request.set_start_sequence(o.from_sequence);
  }
  absl::Status s = client->WatchEvents(
      request,
      [&](const v1::Event& event) {
        std::cout << (o.output == "json" ? EventJsonLine(event) : EventLine(event)) << std::endl;
        return true;
      },
      o.follow ? absl::ZeroDuration() : kHistoryIdle);
  if (!s.ok()) return Fail(s);
  return 0;
}

struct DlqOptions {
  std::string server;
  std::string output;
  uint64_t from_sequence = 0;
  int page_size = 0;
  std::vector<uint64_t> sequences;
};

int RunDlqList(const DlqOptions& o) {
  auto client = ApiClient::Connect(ResolveServerAddress(o.server));
  absl::StatusOr<std::vector<v1::DeadLetter>> letters =
      client->ListDeadLetters(o.from_sequence, o.page_size);
  if (!letters.ok()) return Fail(letters.status());
  if (!o.output.empty()) return PrintJson(DeadLetterListJson(*letters), o.output);
  if (letters->empty()) {
    std::cerr << "No dead letters.\n";
    return 0;
  }
  std::cout << DeadLettersTable(*letters);
  return 0;
}

int RunDlqRedrive(const DlqOptions& o) {
  auto client = ApiClient::Connect(ResolveServerAddress(o.server));
  for (uint64_t sequence : o.sequences) {
    absl::StatusOr<v1::RedriveDeadLetterResponse> r = client->RedriveDeadLetter(sequence);
    if (!r.ok()) return Fail(r.status());
    std::cout << RedriveLine(sequence, *r) << "\n";
  }
  return 0;
}

struct NotificationLogOptions {
  std::string server;
  std::string output;
  std::string application;
  std::string destination;
  std::string since;
  int limit = 0;
};

int RunHistory(const AppOptions& o) {
  auto client = ApiClient::Connect(ResolveServerAddress(o.server));
  absl::StatusOr<std::vector<v1::SyncHistoryEntry>> entries = client->ListHistory(o.name);
  if (!entries.ok()) return Fail(entries.status());
  if (!o.output.empty()) return PrintJson(HistoryListJson(*entries), o.output);
  if (entries->empty()) {
    std::cerr << "No syncs of " << o.name << " recorded yet.\n";
    return 0;
  }
  std::cout << HistoryTable(*entries);
  return 0;
}

int RunRollback(const AppOptions& o) {
  auto client = ApiClient::Connect(ResolveServerAddress(o.server), absl::Seconds(30));
  v1::RollbackRequest request;
  request.set_name(o.name);
  request.set_id(o.id);
  request.set_force(o.force);
  request.set_reason(o.reason);
  absl::StatusOr<v1::RollbackResponse> response = client->Rollback(request);
  if (!response.ok()) return Fail(response.status());
  if (response->suspended()) {
    std::cerr << "Automated sync of " << o.name << " is suspended until `driftless app resume "
              << o.name << "`.\n";
  }
  std::cerr << "Rolling back " << o.name << " to " << response->revision() << " (history entry "
            << o.id << ").\n";
  std::cout << response->sync_id() << "\n";
  return 0;
}

// kubectl diff's exit codes: 0 equal, 1 different, above 1 on error.
int RunDiff(const AppOptions& o) {
  auto client = ApiClient::Connect(ResolveServerAddress(o.server), absl::Seconds(40));
  absl::StatusOr<v1::DiffReply> diff = client->Diff(o.name);
  if (!diff.ok()) {
    Fail(diff.status());
    return 2;
  }
  std::cout << diff->text();
  if (diff->differing() == 0) {
    std::cerr << o.name << " matches the cluster (planned at " << diff->revision().substr(0, 7)
              << ").\n";
    return 0;
  }
  std::cerr << diff->differing() << (diff->differing() == 1 ? " object differs" : " objects differ")
            << " from the desired state planned at " << diff->revision().substr(0, 7) << ".\n";
  return 1;
}

int RunSuspend(const AppOptions& o, bool suspended) {
  auto client = ApiClient::Connect(ResolveServerAddress(o.server));
  absl::StatusOr<v1::SuspendResponse> response = client->Suspend(o.name, suspended);
  if (!response.ok()) return Fail(response.status());
  std::cout << "application/" << o.name
            << (response->changed() ? (suspended ? " suspended" : " resumed")
                                    : (suspended ? " already suspended" : " not suspended"))
            << "\n";
  return 0;
}

int RunNotificationLog(const NotificationLogOptions& o) {
  v1::ListDeliveriesRequest request;
  request.set_application(o.application);
  request.set_destination(o.destination);
  request.set_limit(o.limit);
  if (!o.since.empty()) {
    absl::StatusOr<std::chrono::milliseconds> since = config::ParseDuration(o.since);
    if (!since.ok()) return Fail(Annotate(since.status(), "--since"));
    request.set_since_seconds(std::max<int64_t>(1, since->count() / 1000));
  }
  auto client = ApiClient::Connect(ResolveServerAddress(o.server));
  absl::StatusOr<std::vector<v1::Delivery>> deliveries = client->ListDeliveries(request);
  if (!deliveries.ok()) return Fail(deliveries.status());
  if (!o.output.empty()) return PrintJson(DeliveryListJson(*deliveries), o.output);
  if (deliveries->empty()) {
    std::cerr << "No deliveries.\n";
    return 0;
  }
  std::cout << DeliveriesTable(*deliveries);
  return 0;
}

}  // namespace

void RegisterApiCommands(CLI::App& root, Commands& commands) {
  // apply
  struct ApplyOptions {
    std::vector<std::string> files;
    bool dry_run = false;
    std::string server;
  };
  auto apply = std::make_shared<ApplyOptions>();
  CLI::App* apply_cmd =
      root.add_subcommand("apply", "Register or update driftless resources on the server");
  apply_cmd->add_option("-f,--filename", apply->files, "Resource file(s); - reads stdin")
      ->required();
  apply_cmd->add_flag("--dry-run", apply->dry_run, "Validate and report, store nothing");
  AddServerFlag(apply_cmd, &apply->server);
  commands.Add(apply_cmd,
               [apply] { return RunApply(apply->files, apply->dry_run, apply->server); });

  // get apps | get app NAME
  CLI::App* get_cmd = root.add_subcommand("get", "Show applications");
  get_cmd->require_subcommand(1);
  auto get_apps = std::make_shared<GetOptions>();
  CLI::App* apps_cmd = get_cmd->add_subcommand("apps", "List applications with their status");
  apps_cmd->add_option("--project", get_apps->project, "Only this project's applications");
  apps_cmd->add_option("--name", get_apps->name_pattern, "Only names matching this glob");
  AddPageSizeFlag(apps_cmd, &get_apps->page_size, "500");
  AddOutputFlag(apps_cmd, &get_apps->output);
  AddServerFlag(apps_cmd, &get_apps->server);
  commands.Add(apps_cmd, [get_apps] { return RunGetApps(*get_apps); });

  auto get_app = std::make_shared<GetOptions>();
  CLI::App* app_get_cmd = get_cmd->add_subcommand("app", "Show one application in detail");
  app_get_cmd->add_option("name", get_app->name, "Application name")->required();
  AddOutputFlag(app_get_cmd, &get_app->output);
  AddServerFlag(app_get_cmd, &get_app->server);
  commands.Add(app_get_cmd, [get_app] { return RunGetApp(*get_app); });

  // get <plural> for every other kind
  for (const std::string& kind : resources::Kinds()) {
    if (kind == "Application") continue;
    auto options = std::make_shared<GetOptions>();
    CLI::App* cmd = get_cmd->add_subcommand(KindPlural(kind), "List " + kind + " resources");
    AddOutputFlag(cmd, &options->output);
    AddServerFlag(cmd, &options->server);
    commands.Add(cmd, [kind, options] { return RunGetResources(kind, *options); });
  }

  // app sync | wait | delete | history | rollback | diff | suspend | resume
  CLI::App* app_cmd = root.add_subcommand("app", "Act on one application");
  app_cmd->require_subcommand(1);

  auto sync = std::make_shared<AppOptions>();
  CLI::App* sync_cmd = app_cmd->add_subcommand("sync", "Sync now; prints the sync id");
  sync_cmd->add_option("name", sync->name, "Application name")->required();
  sync_cmd->add_option("--revision", sync->revision, "Commit to sync (default: newest of the ref)");
  sync_cmd->add_option("--resource", sync->resources,
                       "Only this object (KIND/NAME or KIND/NAMESPACE/NAME; repeatable)");
  sync_cmd->add_flag("--prune", sync->prune, "Delete objects no longer in git");
  sync_cmd->add_flag("--dry-run", sync->dry_run, "Plan only, change nothing");
  sync_cmd->add_option("--reason", sync->reason, "Why (kept in the history)");
  AddServerFlag(sync_cmd, &sync->server);
  commands.Add(sync_cmd, [sync] { return RunSync(*sync); });

  auto wait = std::make_shared<AppOptions>();
  CLI::App* wait_cmd =
      app_cmd->add_subcommand("wait", "Wait until the application is synced and/or healthy");
  wait_cmd->add_option("name", wait->name, "Application name")->required();
  wait_cmd->add_flag("--synced", wait->wait.synced, "Wait for sync status Synced");
  wait_cmd->add_flag("--healthy", wait->wait.healthy, "Wait for health Healthy");
  wait_cmd->add_option("--for-revision", wait->wait.for_revision,
                       "Wait until this commit (full or abbreviated) is applied");
  wait_cmd->add_option("--timeout", wait->timeout, "Give up after this long (e.g. 90s, 5m)")
      ->capture_default_str();
  AddServerFlag(wait_cmd, &wait->server);
  commands.Add(wait_cmd, [wait] { return RunWait(*wait); });

  auto del = std::make_shared<AppOptions>();
  CLI::App* delete_cmd = app_cmd->add_subcommand("delete", "Unregister the application");
  delete_cmd->add_option("name", del->name, "Application name")->required();
  delete_cmd->add_flag("--cascade", del->cascade,
                       "Also delete the application's objects from the cluster (the application "
                       "stays, deleting, until they are gone)");
  delete_cmd->add_flag("--wait", del->wait_deleted,
                       "With --cascade: return once the objects are pruned and the application "
                       "is gone");
  delete_cmd->add_option("--timeout", del->timeout, "How long --wait waits (e.g. 90s, 5m)")
      ->capture_default_str();
  delete_cmd->add_flag("--ignore-not-found", del->ignore_not_found,
                       "Succeed silently when the application does not exist");
  AddServerFlag(delete_cmd, &del->server);
  commands.Add(delete_cmd, [del] { return RunDelete(*del); });

  auto history = std::make_shared<AppOptions>();
  CLI::App* history_cmd =
      app_cmd->add_subcommand("history", "The application's finished syncs, newest first");
  history_cmd->add_option("name", history->name, "Application name")->required();
  AddOutputFlag(history_cmd, &history->output);
  AddServerFlag(history_cmd, &history->server);
  commands.Add(history_cmd, [history] { return RunHistory(*history); });

  auto rollback = std::make_shared<AppOptions>();
  CLI::App* rollback_cmd = app_cmd->add_subcommand(
      "rollback", "Sync again at the revision of a history entry; prints the sync id");
  rollback_cmd->add_option("name", rollback->name, "Application name")->required();
  rollback_cmd->add_option("id", rollback->id, "History entry (ID column of app history)")
      ->required()
      ->check(CLI::PositiveNumber);
  rollback_cmd->add_flag("--force", rollback->force,
                         "Also when automated sync is on: suspends it until app resume");
  rollback_cmd->add_option("--reason", rollback->reason, "Why (kept in the history)");
  AddServerFlag(rollback_cmd, &rollback->server);
  commands.Add(rollback_cmd, [rollback] { return RunRollback(*rollback); });

  auto diff = std::make_shared<AppOptions>();
  CLI::App* diff_cmd = app_cmd->add_subcommand(
      "diff",
      "Live objects against the desired ones (exit 0: equal, 1: different, 2: error); Secret "
      "values masked");
  diff_cmd->add_option("name", diff->name, "Application name")->required();
  AddServerFlag(diff_cmd, &diff->server);
  commands.Add(diff_cmd, [diff] { return RunDiff(*diff); });

  for (bool suspended : {true, false}) {
    auto options = std::make_shared<AppOptions>();
    CLI::App* cmd = app_cmd->add_subcommand(
        suspended ? "suspend" : "resume",
        suspended ? "Stop automated syncs (manual ones still run)" : "Resume automated syncs");
    cmd->add_option("name", options->name, "Application name")->required();
    AddServerFlag(cmd, &options->server);
    commands.Add(cmd, [options, suspended] { return RunSuspend(*options, suspended); });
  }

  // events
  auto events = std::make_shared<EventsOptions>();
  CLI::App* events_cmd = root.add_subcommand(
      "events", "Show stored events, then (with --follow) new ones as they happen");
  events_cmd->add_option("--app", events->application, "Only this application's events");
  events_cmd->add_option("--type", events->types, "Only these event types (repeatable)");
  CLI::Option* since = events_cmd->add_option(
      "--since", events->since, "Start with events stored this long ago (e.g. 10m, 2h)");
  events_cmd
      ->add_option("--from-sequence", events->from_sequence,
                   "Start at this DRIFTLESS_EVENTS stream sequence")
      ->check(CLI::PositiveNumber)
      ->excludes(since);
  events_cmd->add_flag("-f,--follow", events->follow, "Keep streaming until interrupted");
  events_cmd->add_option("-o,--output", events->output, "json: one JSON object per line")
      ->check(CLI::IsMember({"json"}));
  AddServerFlag(events_cmd, &events->server);
  commands.Add(events_cmd, [events] { return RunEvents(*events); });

  // dlq list | redrive
  CLI::App* dlq_cmd =
      root.add_subcommand("dlq", "Show and redrive dead letters (work items that failed for good)");
  dlq_cmd->require_subcommand(1);
  auto dlq_list = std::make_shared<DlqOptions>();
  CLI::App* dlq_list_cmd = dlq_cmd->add_subcommand("list", "List dead letters, oldest first");
  dlq_list_cmd
      ->add_option("--from-sequence", dlq_list->from_sequence,
                   "Start at this DRIFTLESS_DLQ stream sequence")
      ->check(CLI::PositiveNumber);
  AddPageSizeFlag(dlq_list_cmd, &dlq_list->page_size, "100");
  AddOutputFlag(dlq_list_cmd, &dlq_list->output);
  AddServerFlag(dlq_list_cmd, &dlq_list->server);
  commands.Add(dlq_list_cmd, [dlq_list] { return RunDlqList(*dlq_list); });

  // notifications log
  CLI::App* notifications_cmd =
      root.add_subcommand("notifications", "What the notifier delivered (or failed to)");
  notifications_cmd->require_subcommand(1);
  auto log_options = std::make_shared<NotificationLogOptions>();
  CLI::App* log_cmd =
      notifications_cmd->add_subcommand("log", "The delivery log (30 days), newest first");
  log_cmd->add_option("--app", log_options->application, "Only this application's");
  log_cmd->add_option("--provider", log_options->destination,
                      "Only destinations whose name contains this (a provider's name)");
  log_cmd->add_option("--since", log_options->since, "Only the last (e.g. 10m, 2h)");
  log_cmd->add_option("--limit", log_options->limit, "At most this many (default 100, max 1000)")
      ->check(CLI::NonNegativeNumber);
  AddOutputFlag(log_cmd, &log_options->output);
  AddServerFlag(log_cmd, &log_options->server);
  commands.Add(log_cmd, [log_options] { return RunNotificationLog(*log_options); });

  auto redrive = std::make_shared<DlqOptions>();
  CLI::App* redrive_cmd = dlq_cmd->add_subcommand(
      "redrive", "Publish dead letters again to their original subject and remove them");
  redrive_cmd->add_option("sequence", redrive->sequences, "Dead letter sequence(s) (SEQ column)")
      ->required()
      ->check(CLI::PositiveNumber);
  AddServerFlag(redrive_cmd, &redrive->server);
  commands.Add(redrive_cmd, [redrive] { return RunDlqRedrive(*redrive); });
}

}  // namespace driftless::cli
