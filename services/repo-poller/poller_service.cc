#include "services/repo-poller/poller_service.h"

#include <algorithm>
#include <cctype>
#include <random>

#include "common/config/units.h"
#include "common/git/url.h"
#include "common/http/metrics.h"
#include "common/log/log.h"
#include "common/manifest/manifest.h"
#include "common/strings/str.h"
#include "services/common/events.h"
#include "services/common/identity.h"
#include "services/common/topology.h"

namespace driftless::repo_poller {
namespace {

using manifest::Json;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kApplicationPrefix = "Application.";

metrics::Counter& Emitted(std::string_view type) {
  static auto& family = metrics::Registry::Default().AddCounterFamily(
      "driftless_repo_poller_events_total",
      "Events emitted by the repo-poller: source.changed, sync.failed.", {"type"});
  return family.WithLabels(std::vector<std::string>{std::string(type)});
}

metrics::Counter& Polls(std::string_view result) {
  static auto& family = metrics::Registry::Default().AddCounterFamily(
      "driftless_repo_poller_ls_remote_total", "ls-remote calls by result (ok, error).",
      {"result"});
  return family.WithLabels(std::vector<std::string>{std::string(result)});
}

std::string RandomId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  uint64_t v = rng();
  for (char& c : out) {
    c = kHex[v & 0xf];
    v >>= 4;
  }
  return out;
}

// `d` plus up to 10% (so that replicas started together do not resync in step).
Clock::duration Jittered(absl::Duration d) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const auto base = absl::ToChronoMilliseconds(d);
  return base + std::chrono::milliseconds(
                    std::uniform_int_distribution<int64_t>(0, base.count() / 10)(rng));
}

std::string Short(std::string_view sha) { return std::string(sha.substr(0, 7)); }

// The application's source as the pure core sees it. kInvalidArgument naming the field.
absl::StatusOr<AppSource> SourceOf(const service::StoredResource& r, bool* default_head) {
  *default_head = false;
  const Json* source = nullptr;
  if (r.object.is_object() && r.object.contains("spec") && r.object["spec"].is_object() &&
      r.object["spec"].contains("source") && r.object["spec"]["source"].is_object()) {
    source = &r.object["spec"]["source"];
  }
  if (source == nullptr) {
    return absl::InvalidArgumentError(
        strings::Cat("application ", r.name, ": spec.source is missing"));
  }
  AppSource out;
  out.application = r.name;
  if (!source->contains("repoURL") || !(*source)["repoURL"].is_string() ||
      (*source)["repoURL"].get<std::string>().empty()) {
    return absl::InvalidArgumentError(
        strings::Cat("application ", r.name, ": spec.source.repoURL is missing"));
  }
  out.repo_url = (*source)["repoURL"].get<std::string>();
  out.path = source->value("path", "");
  auto ref = source->find("ref");
  if (ref == source->end() || !ref->is_object() || ref->empty()) {
    *default_head = true;
    out.ref = git::RefSpec::Branch("HEAD");
    return out;
  }
  auto str = [&](const char* key) -> std::optional<std::string> {
    auto it = ref->find(key);
    if (it == ref->end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  if (auto v = str("branch")) {
    out.ref = git::RefSpec::Branch(*v);
  } else if (auto t = str("tag")) {
    out.ref = git::RefSpec::Tag(*t);
  } else if (auto s = str("semver")) {
    out.ref = git::RefSpec::Semver(*s);
  } else if (auto c = str("commit")) {
    out.ref = git::RefSpec::Commit(*c);
  } else {
    return absl::InvalidArgumentError(strings::Cat(
        "application ", r.name, ": spec.source.ref must set one of branch, tag, semver, commit"));
  }
  return out;
}

std::string RefText(const AppSource& s, bool default_head) {
  return default_head ? std::string("HEAD") : s.ref.ToString();
}

std::string ConditionReason(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kNotFound:
      return "NotFound";
    case absl::StatusCode::kUnauthenticated:
      return "AuthenticationFailed";
    case absl::StatusCode::kInvalidArgument:
      return "InvalidSource";
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return "Unreachable";
    default:
      return "SourceError";
  }
}

}  // namespace

PollerService::PollerService(bus::EventBus* bus, bus::KvStore* kv, git::GitClient* git,
                             PollerOptions options)
    : bus_(bus), kv_(kv), git_(git), options_(std::move(options)) {
  // A KV key: [-/_=.A-Za-z0-9], no leading/trailing/double dots.
  const std::string& id = options_.replica_id.empty() ? options_.emitter : options_.replica_id;
  for (char c : id)
    member_key_ +=
        std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '=' ? c : '_';
  if (member_key_.empty()) member_key_ = "poller";
}

PollerService::~PollerService() { Stop(); }

absl::Status PollerService::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return absl::OkStatus();
  }
  DL_ASSIGN_OR_RETURN(watch_,
                      kv_->Watch(service::kResourcesBucket, strings::Cat(kApplicationPrefix, ">"),
                                 [this](const bus::WatchEvent& e) { OnWatch(e); }));
  std::lock_guard<std::mutex> lock(mu_);
  started_ = true;
  timer_ = std::thread([this] { TimerLoop(); });
  membership_ = std::thread([this] { MembershipLoop(); });
  return absl::OkStatus();
}

void PollerService::MembershipLoop() {
  while (true) {
    absl::StatusOr<uint64_t> put =
        kv_->Put(service::kPollersBucket, member_key_, absl::FormatTime(absl::Now()));
    absl::StatusOr<std::vector<std::string>> keys = kv_->Keys(service::kPollersBucket, "");
    if (put.ok() && keys.ok()) {
      std::sort(keys->begin(), keys->end());
      std::lock_guard<std::mutex> lock(mu_);
      if (*keys != members_) {
        log::Info("poll owners changed",
                  {{"members", static_cast<int64_t>(keys->size())}, {"self", member_key_}});
      }
      members_ = *std::move(keys);
    } else {
      log::Debug("cannot refresh poller membership",
                 {{"error", !put.ok() ? put.status() : keys.status()}});
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.membership_interval),
                     [this] { return stopping_; })) {
      break;
    }
  }
  // Leave at once, so the others take this replica's repositories over now.
  (void)kv_->Delete(service::kPollersBucket, member_key_);
}

bool PollerService::Owns(const std::string& normalized_url) {
  std::lock_guard<std::mutex> lock(mu_);
  return OwnsLocked(normalized_url);
}

bool PollerService::OwnsLocked(const std::string& normalized_url) const {
  if (normalized_url.empty() || members_.empty() ||
      std::find(members_.begin(), members_.end(), member_key_) == members_.end()) {
    return true;  // membership unknown yet: poll rather than miss
  }
  return OwnerOf(normalized_url, members_) == member_key_;
}

void PollerService::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (watch_) watch_->Stop();
  if (timer_.joinable()) timer_.join();
  if (membership_.joinable()) membership_.join();
}

void PollerService::OnWatch(const bus::WatchEvent& event) {
  if (event.kind == bus::WatchEvent::Kind::kInitialValuesDone) return;
  if (!event.entry.key.starts_with(kApplicationPrefix)) return;
  const std::string name = event.entry.key.substr(kApplicationPrefix.size());
  if (event.kind == bus::WatchEvent::Kind::kDelete) {
    Untrack(name);
    return;
  }
  absl::StatusOr<service::StoredResource> r =
      service::ResourceStore::Decode(event.entry.key, event.entry.value, event.entry.revision);
  if (!r.ok()) {
    log::Warn("cannot decode a stored application",
              {{"key", event.entry.key}, {"error", r.status()}});
    return;
  }
  Track(*r);
}

void PollerService::Track(const service::StoredResource& resource) {
  if (service::IsDeleting(resource)) {  // nothing is minted for it again
    Untrack(resource.name);
    return;
  }
  bool head = false;
  absl::StatusOr<AppSource> src = SourceOf(resource, &head);
  const std::string url = src.ok() ? git::NormalizeUrl(src->repo_url) : "";
  bool due = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = apps_.find(resource.name);
    if (it == apps_.end()) {
      apps_[resource.name] = Tracked{resource, Clock::time_point::min(), url};
      due = true;
    } else {
      if (it->second.resource.spec_digest != resource.spec_digest) {
        it->second.next_due = Clock::time_point::min();
        due = true;
      }
      if (it->second.url != url) by_url_[it->second.url].erase(resource.name);
      it->second.resource = resource;
      it->second.url = url;
    }
    if (!url.empty()) by_url_[url].insert(resource.name);
  }
  if (due) cv_.notify_all();
}

void PollerService::Untrack(const std::string& application) {
  bool known = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = apps_.find(application);
    known = it != apps_.end();
    if (known) {
      if (auto u = by_url_.find(it->second.url); u != by_url_.end()) {
        u->second.erase(application);
        if (u->second.empty()) by_url_.erase(u);
      }
      apps_.erase(it);
    }
  }
  if (!known) return;
  // A re-created application starts from scratch (and is rendered again).
  std::shared_ptr<std::mutex> app_lock = AppLock(application);
  std::lock_guard<std::mutex> lock(*app_lock);
  if (absl::Status s = service::SourceStore(kv_).Delete(application); !s.ok()) {
    log::Warn("cannot forget the source of a deleted application",
              {{"application", application}, {"error", s}});
  }
  log::Info("application removed", {{"application", application}});
}

void PollerService::Resync() {
  absl::StatusOr<std::vector<service::StoredResource>> all =
      service::ResourceStore(kv_).List("Application");
  if (!all.ok()) {
    log::Debug("cannot list applications", {{"error", all.status()}});
    return;
  }
  std::map<std::string, bool> present;
  for (const service::StoredResource& r : *all) {
    present[r.name] = true;
    Track(r);
  }
  std::vector<std::string> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, tracked] : apps_) {
      if (!present.contains(name)) gone.push_back(name);
    }
  }
  for (const std::string& name : gone) Untrack(name);
}

std::chrono::steady_clock::duration PollerService::IntervalOf(
    const service::StoredResource& resource) const {
  auto fallback = absl::ToChronoMilliseconds(options_.default_interval);
  const Json& o = resource.object;
  if (o.is_object() && o.contains("spec") && o["spec"].is_object() &&
      o["spec"].contains("interval") && o["spec"]["interval"].is_string()) {
    absl::StatusOr<std::chrono::milliseconds> d =
        config::ParseDuration(o["spec"]["interval"].get<std::string>());
    if (d.ok() && d->count() > 0) return *d;
  }
  return fallback;
}

void PollerService::TimerLoop() {
  Clock::time_point next_resync = Clock::now() + Jittered(options_.resync_interval);
  while (true) {
    std::vector<service::StoredResource> due;
    bool resync = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (!stopping_) {
        Clock::time_point now = Clock::now();
        Clock::time_point wake = next_resync;
        for (auto& [name, tracked] : apps_) {
          if (tracked.next_due <= now) {
            // Another replica owns this repository: it polls it; this one only keeps time.
            if (!OwnsLocked(tracked.url)) {
              tracked.next_due = now + IntervalOf(tracked.resource);
              wake = std::min(wake, tracked.next_due);
              continue;
            }
            due.push_back(tracked.resource);
            tracked.next_due = now + IntervalOf(tracked.resource);
          } else {
            wake = std::min(wake, tracked.next_due);
          }
        }
        if (now >= next_resync) {
          resync = true;
          next_resync = now + Jittered(options_.resync_interval);
        }
        if (!due.empty() || resync) break;
        cv_.wait_until(lock, wake);
      }
      if (stopping_) return;
    }
    if (!due.empty()) {
      if (absl::Status s = PollApps(due, nullptr, ""); !s.ok()) {
        log::Warn("poll incomplete, retrying soon", {{"error", s}});
        std::lock_guard<std::mutex> lock(mu_);
        for (const service::StoredResource& r : due) {
          auto it = apps_.find(r.name);
          if (it != apps_.end()) {
            it->second.next_due =
                std::min(it->second.next_due, Clock::now() + std::chrono::seconds(2));
          }
        }
      }
    }
    if (resync) Resync();
  }
}

std::shared_ptr<std::mutex> PollerService::AppLock(const std::string& application) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<std::mutex>& m = app_locks_[application];
  if (!m) m = std::make_shared<std::mutex>();
  return m;
}

absl::Status PollerService::PollNow(const std::string& application) {
  DL_ASSIGN_OR_RETURN(service::StoredResource r,
                      service::ResourceStore(kv_).Get("Application", application));
  return PollApps({r}, nullptr, "");
}

absl::Status PollerService::PollApps(const std::vector<service::StoredResource>& apps,
                                     const v1::SyncRequested* request,
                                     const std::string& correlation_id) {
  absl::Status result = absl::OkStatus();
  std::map<std::string, std::vector<Target>> groups;  // by normalized URL
  for (const service::StoredResource& r : apps) {
    Target t;
    t.resource = r;
    absl::StatusOr<AppSource> s = SourceOf(r, &t.default_head);
    if (!s.ok()) {
      result.Update(ReportError(r, std::string(s.status().message()), s.status().code(), request,
                                correlation_id));
      continue;
    }
    t.source = *std::move(s);
    groups[git::NormalizeUrl(t.source.repo_url)].push_back(std::move(t));
  }
  for (const auto& [url, targets] : groups) {
    result.Update(PollRepository(targets, request, correlation_id));
  }
  return result;
}

absl::Status PollerService::PollRepository(const std::vector<Target>& targets,
                                           const v1::SyncRequested* request,
                                           const std::string& correlation_id) {
  const std::string& url = targets.front().source.repo_url;
  const std::string safe_url = git::RedactUrl(url);
  absl::Status result = absl::OkStatus();
  auto fail = [&](const Target& t, const absl::Status& s) {
    std::string message = strings::Cat("application ", t.resource.name, ": source ", safe_url, " ",
                                       RefText(t.source, t.default_head), ": ", s.message());
    result.Update(ReportError(t.resource, message, s.code(), request, correlation_id));
  };

  // The mirror is fetched at most once per poll, only when a path diff or a requested
  // revision needs it.
  std::optional<absl::Status> fetched;
  auto fetch = [&]() -> absl::Status {
    if (!fetched) fetched = git_->Fetch(url, {}).status();
    return *fetched;
  };
  // Changed paths per (previous, commit) pair, computed once per poll for all its targets.
  std::map<std::pair<std::string, std::string>, std::optional<std::vector<std::string>>> diffs;
  auto changed_paths = [&](const std::string& previous,
                           const std::string& commit) -> std::optional<std::vector<std::string>> {
    if (previous.empty() || previous == commit) return std::nullopt;
    auto [it, added] = diffs.try_emplace({previous, commit});
    if (!added) return it->second;
    if (!fetch().ok()) return std::nullopt;
    absl::StatusOr<std::vector<std::string>> paths = git_->ChangedPaths(url, previous, commit);
    if (paths.ok()) it->second = *std::move(paths);  // else force push / rewrite: unknown
    return it->second;
  };

  // A requested exact revision replaces the ref.
  if (request != nullptr && !request->revision().empty()) {
    for (const Target& t : targets) {
      absl::Status f = fetch();
      if (!f.ok()) {
        fail(t, f);
        continue;
      }
      absl::StatusOr<std::string> commit = git_->ExpandCommit(url, request->revision());
      if (!commit.ok()) {
        fail(t, commit.status());
        continue;
      }
      result.Update(Publish(t, *commit, "", request, correlation_id,
                            [&](const std::string& prev) { return changed_paths(prev, *commit); }));
    }
    return result;
  }

  absl::StatusOr<git::RefMap> refs = git_->ListRemoteRefs(url, {});
  Polls(refs.ok() ? "ok" : "error").Increment();
  if (!refs.ok()) {
    for (const Target& t : targets) fail(t, refs.status());
    return result;
  }
  std::vector<AppSource> explicit_refs;
  for (const Target& t : targets) {
    if (!t.default_head) explicit_refs.push_back(t.source);
  }
  // DecidePoll with nothing seen resolves every source; the comparison with the recorded
  // (commit, spec digest) happens in Publish.
  PollResult decided = DecidePoll(explicit_refs, *refs, {});
  std::map<std::string, const Moved*> resolved;
  for (const Moved& m : decided.moved) resolved[m.application] = &m;
  std::map<std::string, absl::Status> errors;
  for (const AppError& e : decided.errors) errors[e.application] = e.status;

  // Minting first (pass 1), recording the rest after (pass 2): with a thousand applications
  // on one repository, the ones a push touches do not wait for a thousand record writes.
  struct Later {
    const Target* target;
    std::string commit, ref;
    service::SourceRecord seen;
  };
  std::vector<Later> later;
  for (const Target& t : targets) {
    std::string commit, ref;
    if (t.default_head) {
      auto head = refs->find("HEAD");
      if (head == refs->end()) {
        fail(t, absl::NotFoundError(
                    strings::Cat("the repository has no HEAD (empty?) at ", safe_url)));
        continue;
      }
      commit = head->second;
      ref = "HEAD";
    } else if (auto e = errors.find(t.resource.name); e != errors.end()) {
      fail(t, e->second);
      continue;
    } else if (auto m = resolved.find(t.resource.name); m != resolved.end()) {
      commit = m->second->revision;
      ref = m->second->ref;
    } else {
      continue;  // unreachable: DecidePoll reports every source
    }
    std::optional<service::SourceRecord> deferred;
    result.Update(Publish(
        t, commit, ref, request, correlation_id,
        [&](const std::string& prev) { return changed_paths(prev, commit); }, &deferred));
    if (deferred) later.push_back({&t, commit, ref, *std::move(deferred)});
  }
  // The applications the move did not affect: only their recorded revision changes.
  for (const Later& l : later) {
    result.Update(
        RecordMoved(*l.target, l.commit, l.ref, l.seen, correlation_id,
                    [&](const std::string& prev) { return changed_paths(prev, l.commit); }));
  }
  return result;
}

absl::Status PollerService::RecordMoved(const Target& target, const std::string& commit,
                                        const std::string& ref, const service::SourceRecord& seen,
                                        const std::string& correlation_id,
                                        const ChangedPathsFn& changed_paths) {
  {
    std::shared_ptr<std::mutex> app_lock = AppLock(target.resource.name);
    std::lock_guard<std::mutex> lock(*app_lock);
    {
      std::lock_guard<std::mutex> guard(mu_);
      if (started_ && !apps_.contains(target.resource.name)) return absl::OkStatus();
    }
    service::SourceRecord next = seen;
    next.revision = commit;
    next.ref = ref;
    absl::StatusOr<uint64_t> written =
        service::SourceStore(kv_).Write(target.resource.name, next, seen.kv_revision);
    if (!absl::IsAborted(written.status())) return written.status();
  }
  // Written by someone else since Publish read it: decide again from the current record.
  return Publish(target, commit, ref, nullptr, correlation_id, changed_paths);
}

absl::Status PollerService::Publish(const Target& target, const std::string& commit,
                                    const std::string& ref, const v1::SyncRequested* request,
                                    const std::string& correlation_id,
                                    const ChangedPathsFn& changed_paths,
                                    std::optional<service::SourceRecord>* deferred) {
  const service::StoredResource& r = target.resource;
  std::shared_ptr<std::mutex> app_lock = AppLock(r.name);
  std::lock_guard<std::mutex> lock(*app_lock);
  if (request == nullptr) {
    // Deleted while its repository was polled: do not resurrect its record (Untrack removes
    // it under the same lock after erasing it from apps_).
    std::lock_guard<std::mutex> guard(mu_);
    if (started_ && !apps_.contains(r.name)) return absl::OkStatus();
  }
  service::SourceStore sources(kv_);
  for (int round = 0;; ++round) {
    DL_ASSIGN_OR_RETURN(std::optional<service::SourceRecord> record, sources.Get(r.name));
    const bool same_incarnation = record && record->uid == r.uid;
    if (same_incarnation && !record->emitted) {
      // Minted, then the process died before (or while) publishing: publish it now (the same
      // identity, so a publish that did happen is deduplicated downstream).
      DL_RETURN_IF_ERROR(EmitMinted(target, *record, record->kv_revision, record->revision, {}));
      continue;
    }
    if (request != nullptr && same_incarnation && !request->sync_id().empty() &&
        std::find(record->handled_requests.begin(), record->handled_requests.end(),
                  request->sync_id()) != record->handled_requests.end()) {
      log::Info("sync request already minted, ignoring the redelivery",
                {{"application", r.name}, {"syncId", request->sync_id()}});
      return absl::OkStatus();
    }
    const bool new_spec = !same_incarnation || record->spec_digest != r.spec_digest;
    const bool moved = same_incarnation && record->revision != commit;
    const bool had_error = record && !record->error.empty();
    std::vector<std::string> paths;
    bool affected = new_spec || request != nullptr;
    if (moved) {
      std::optional<std::vector<std::string>> known = changed_paths(record->revision);
      if (known) paths = *known;
      // Monorepo-aware: a commit that touches none of the application's paths is recorded
      // but mints nothing.
      AppSource source = target.source;
      if (known && !affected) source.reads = ReadSetOf(r.name, r.uid);
      affected = affected || !AffectedByPaths({Moved{r.name, record->revision, commit, ref}},
                                              {source}, paths, known.has_value())
                                  .empty();
    }
    const bool record_it =
        (new_spec || moved) && (request == nullptr || request->revision().empty());
    if (!affected && !record_it && !had_error) return absl::OkStatus();
    if (deferred != nullptr && !affected && !had_error) {
      *deferred = std::move(record);
      return absl::OkStatus();
    }

    service::SourceRecord next = record.value_or(service::SourceRecord{});
    if (!same_incarnation) {
      next = service::SourceRecord{};
      next.uid = r.uid;
    }
    if (affected) {
      next.desired_seq += 1;
      next.attempt = 1;
      next.reason = request != nullptr  ? "request"
                    : !same_incarnation ? "created"
                    : new_spec          ? "spec"
                                        : "revision";
      next.target_revision = commit;
      next.emitted = false;
      next.request = request != nullptr ? request->SerializeAsString() : "";
      if (request != nullptr && !request->sync_id().empty()) {
        next.handled_requests.push_back(request->sync_id());
        if (next.handled_requests.size() > service::SourceRecord::kMaxHandledRequests) {
          next.handled_requests.erase(next.handled_requests.begin());
        }
      }
      next.correlation_id = !correlation_id.empty() ? correlation_id : RandomId();
    }
    if (record_it) {
      next.revision = commit;
      next.spec_digest = r.spec_digest;
      next.ref = ref;
    }
    next.error.clear();
    absl::StatusOr<uint64_t> written =
        sources.Write(r.name, next, record ? record->kv_revision : 0);
    if (absl::IsAborted(written.status()) && round < 10) continue;  // another replica wrote
    DL_RETURN_IF_ERROR(written.status());
    if (affected) {
      DL_RETURN_IF_ERROR(EmitMinted(target, next, *written, record ? record->revision : "", paths));
    }
    if (had_error || !record) {
      DL_RETURN_IF_ERROR(service::StatusStore(kv_)
                             .Update(r.name,
                                     [](v1::AppStatus& s) {
                                       const v1::Condition* c =
                                           service::FindCondition(s, "SourceError");
                                       if (c == nullptr || !c->status()) return false;
                                       service::SetCondition(s, "SourceError", false, "Resolved",
                                                             "the source resolves again");
                                       return true;
                                     })
                             .status());
    }
    return absl::OkStatus();
  }
}

std::vector<std::string> PollerService::ReadSetOf(const std::string& application,
                                                  const std::string& uid) {
  absl::StatusOr<std::optional<service::ReadSetRecord>> reads =
      service::ReadSetStore(kv_).Get(application);
  // Without a read set of this incarnation only the application's path counts.
  if (!reads.ok() || !reads->has_value() || (*reads)->uid != uid) return {};
  return (*reads)->paths;
}

absl::Status PollerService::EmitMinted(const Target& target, service::SourceRecord record,
                                       uint64_t kv_revision, const std::string& previous,
                                       const std::vector<std::string>& changed_paths) {
  const service::StoredResource& r = target.resource;
  const service::SyncIdentity identity{record.uid, record.desired_seq, record.attempt};
  v1::SyncRequested request;
  const bool requested = !record.request.empty() && request.ParseFromString(record.request);
  v1::Event e = service::NewEvent(service::event_type::kSourceChanged, r.name,
                                  record.target_revision, options_.emitter);
  service::SetIdentity(e, identity);
  e.set_id(service::IdentityEventId(service::event_type::kSourceChanged, r.name, identity));
  e.set_correlation_id(record.correlation_id);
  e.set_severity(v1::SEVERITY_INFO);
  v1::SourceChanged* p = e.mutable_source_changed();
  p->set_repo_url(git::RedactUrl(target.source.repo_url));
  p->set_ref(record.ref);
  p->set_previous_revision(previous);
  p->set_revision(record.target_revision);
  if (previous != record.target_revision) {
    for (const std::string& path : changed_paths) p->add_changed_paths(path);
  }
  p->add_applications(r.name);
  p->set_spec_digest(r.spec_digest);
  if (requested) *p->mutable_sync_request() = request;
  e.set_message(strings::Cat(
      r.name, ": ", record.ref.empty() ? "commit" : record.ref, " at ",
      Short(record.target_revision), " (desired generation ", record.desired_seq, ", ",
      record.reason, record.attempt > 1 ? strings::Cat(", attempt ", record.attempt) : "", ")"));
  DL_RETURN_IF_ERROR(service::Emit(*bus_, e, service::kStageRender));
  Emitted(service::event_type::kSourceChanged).Increment();
  log::Info("source changed", {{"application", r.name},
                               {"revision", record.target_revision},
                               {"previous", previous},
                               {"ref", record.ref},
                               {"seq", record.desired_seq},
                               {"attempt", record.attempt},
                               {"reason", record.reason},
                               {"syncId", requested ? request.sync_id() : std::string()}});
  // Mark it published. Best effort: when this write is lost, the next poll publishes the same
  // identity again (deduplicated downstream).
  record.emitted = true;
  (void)service::SourceStore(kv_).Write(r.name, record, kv_revision);
  return absl::OkStatus();
}

bus::Disposition PollerService::HandleRetry(const v1::Event& event, const bus::Message& message) {
  const v1::SyncRetry& retry = event.sync_retry();
  const std::string& app = event.application();
  const absl::Time due = service::TimeOf(retry.not_before());
  if (const absl::Duration wait = due - absl::Now(); wait > absl::ZeroDuration()) {
    // Not due yet: come back then (one delivery; the bus dead-letters after kMaxDeliver).
    return bus::Disposition::Nak(wait, "retry not due yet");
  }
  absl::StatusOr<service::StoredResource> r = service::ResourceStore(kv_).Get("Application", app);
  if (absl::IsNotFound(r.status())) return bus::Disposition::Ack();
  if (!r.ok()) return bus::Disposition::Nak(service::RetryDelay(message), r.status().ToString());
  if (service::IsDeleting(*r)) {
    log::Info("application being deleted, sync request dropped", {{"application", app}});
    return bus::Disposition::Ack();
  }
  Target target;
  target.resource = *r;
  absl::StatusOr<AppSource> src = SourceOf(*r, &target.default_head);
  if (!src.ok()) return bus::Disposition::Ack();  // reported by the polls
  target.source = *std::move(src);

  std::shared_ptr<std::mutex> app_lock = AppLock(app);
  std::lock_guard<std::mutex> lock(*app_lock);
  service::SourceStore sources(kv_);
  for (int round = 0; round < 10; ++round) {
    absl::StatusOr<std::optional<service::SourceRecord>> record = sources.Get(app);
    if (!record.ok()) {
      return bus::Disposition::Nak(service::RetryDelay(message), record.status().ToString());
    }
    if (!*record || (*record)->uid != event.application_uid() || (*record)->uid != r->uid ||
        (*record)->desired_seq != retry.failed_seq()) {
      log::Info("retry moot: a newer desired generation exists",
                {{"application", app}, {"failedSeq", retry.failed_seq()}});
      return bus::Disposition::Ack();
    }
    service::SourceRecord next = **record;
    next.desired_seq += 1;
    next.attempt = retry.next_attempt();
    next.reason = "retry";
    next.target_revision = !retry.revision().empty() ? retry.revision() : next.target_revision;
    next.emitted = false;
    next.request = retry.has_sync_request() ? retry.sync_request().SerializeAsString() : "";
    next.correlation_id = event.correlation_id();
    absl::StatusOr<uint64_t> written = sources.Write(app, next, (*record)->kv_revision);
    if (absl::IsAborted(written.status())) continue;
    if (!written.ok()) {
      return bus::Disposition::Nak(service::RetryDelay(message), written.status().ToString());
    }
    if (absl::Status s = EmitMinted(target, next, *written, next.revision, {}); !s.ok()) {
      return bus::Disposition::Nak(service::RetryDelay(message), s.ToString());
    }
    return bus::Disposition::Ack();
  }
  return bus::Disposition::Nak(service::RetryDelay(message), "source record contention");
}

absl::Status PollerService::ReportError(const service::StoredResource& resource,
                                        const std::string& message, absl::StatusCode code,
                                        const v1::SyncRequested* request,
                                        const std::string& correlation_id) {
  std::shared_ptr<std::mutex> app_lock = AppLock(resource.name);
  std::lock_guard<std::mutex> lock(*app_lock);
  service::SourceStore sources(kv_);
  DL_ASSIGN_OR_RETURN(std::optional<service::SourceRecord> record, sources.Get(resource.name));
  const bool first = !record || record->error != message;
  if (first) {
    log::Warn("source error", {{"application", resource.name}, {"error", message}});
    const std::string reason = ConditionReason(code);
    DL_RETURN_IF_ERROR(service::StatusStore(kv_)
                           .Update(resource.name,
                                   [&](v1::AppStatus& s) {
                                     service::SetCondition(s, "SourceError", true, reason, message);
                                     s.set_message(message);
                                     return true;
                                   })
                           .status());
  }
  if (first || request != nullptr) {
    DL_RETURN_IF_ERROR(BroadcastFailure(resource.name, message, request, correlation_id));
  }
  if (first) {
    service::SourceRecord next = record.value_or(service::SourceRecord{});
    next.error = message;
    DL_RETURN_IF_ERROR(sources.Put(resource.name, next));
  }
  return absl::OkStatus();
}

absl::Status PollerService::BroadcastFailure(const std::string& application,
                                             const std::string& message,
                                             const v1::SyncRequested* request,
                                             const std::string& correlation_id) {
  const std::string sync_id = request != nullptr ? request->sync_id() : "";
  v1::Event e = service::NewEvent("sync.failed", application, "", options_.emitter);
  e.set_id(
      service::EventId("sync.failed", application, "", manifest::Digest(Json(message)), sync_id));
  e.set_correlation_id(!correlation_id.empty() ? correlation_id : RandomId());
  e.set_severity(v1::SEVERITY_ERROR);
  e.set_message(message);
  v1::SyncFinished* f = e.mutable_sync_finished();
  f->set_sync_id(sync_id);
  f->set_succeeded(false);
  f->set_error(message);
  if (request != nullptr) f->set_initiated_by(request->requested_by());
  DL_RETURN_IF_ERROR(service::Emit(*bus_, e));
  Emitted("sync.failed").Increment();
  return absl::OkStatus();
}

bus::Disposition PollerService::Handle(const v1::Event& event, const bus::Message& message) {
  absl::Status s = absl::OkStatus();
  if (event.type() == service::event_type::kSyncRetry && event.has_sync_retry()) {
    return HandleRetry(event, message);
  }
  if (event.type() == "sync.requested") {
    const std::string app = event.application();
    const v1::SyncRequested& request = event.sync_requested();
    const std::string correlation =
        !event.correlation_id().empty() ? event.correlation_id() : request.sync_id();
    absl::StatusOr<service::StoredResource> r = service::ResourceStore(kv_).Get("Application", app);
    if (r.status().code() == absl::StatusCode::kNotFound) {
      s = BroadcastFailure(app, strings::Cat("application ", app, " not found"), &request,
                           correlation);
    } else if (!r.ok()) {
      s = r.status();
    } else {
      s = PollApps({*r}, &request, correlation);
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = apps_.find(app); it != apps_.end()) {
        it->second.next_due = Clock::now() + IntervalOf(it->second.resource);
      }
    }
  } else if (event.type() == "webhook.push") {
    const std::string url = git::NormalizeUrl(event.webhook_push().repo_url());
    std::vector<service::StoredResource> matching;
    {
      // Indexed by repository: no scan of every application.
      std::lock_guard<std::mutex> lock(mu_);
      if (auto u = by_url_.find(url); u != by_url_.end()) {
        for (const std::string& name : u->second) {
          Tracked& tracked = apps_.at(name);
          matching.push_back(tracked.resource);
          tracked.next_due = Clock::now() + IntervalOf(tracked.resource);
        }
      }
    }
    log::Info("webhook push", {{"repo", git::RedactUrl(event.webhook_push().repo_url())},
                               {"applications", static_cast<int64_t>(matching.size())}});
    if (!matching.empty()) s = PollApps(matching, nullptr, event.correlation_id());
  } else {
    log::Debug("ignoring work item", {{"event", service::Describe(event)}});
    return bus::Disposition::Ack();
  }
  if (!s.ok()) {
    // Git errors are reported, not returned: what is left is NATS being unavailable.
    return bus::Disposition::Nak(absl::Seconds(1), std::string(s.message()));
  }
  return bus::Disposition::Ack();
}

}  // namespace driftless::repo_poller
