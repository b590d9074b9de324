#include "services/planner/live_cache.h"

#include <condition_variable>

#include "common/log/log.h"
#include "common/manifest/object.h"
#include "services/sync/plan.h"

namespace driftless::planner {
namespace {

// Sleeps for `delay` or until `stop` is requested; false when stopped.
bool SleepFor(std::stop_token stop, absl::Duration delay) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  return !cv.wait_for(lock, stop, absl::ToChronoNanoseconds(delay), [] { return false; });
}

const Json* ResourceVersionField(const Json& object) {
  if (!object.is_object()) return nullptr;
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return nullptr;
  auto rv = metadata->find("resourceVersion");
  return rv != metadata->end() && rv->is_string() ? &*rv : nullptr;
}

// What drift can see of an object: without status, resourceVersion and managedFields.
std::string ContentOf(const Json& object) {
  Json copy = object;
  copy.erase("status");
  if (auto m = copy.find("metadata"); m != copy.end() && m->is_object()) {
    m->erase("resourceVersion");
    m->erase("managedFields");
  }
  return std::to_string(std::hash<std::string>{}(copy.dump()));
}

LiveCache::ChangeFn NoOp() {
  return [](std::string_view) {};
}

}  // namespace

LiveCache::LiveCache(kube::KubeClient* kube, ChangeFn on_change, Options options)
    : kube_(kube), on_change_(on_change ? std::move(on_change) : NoOp()), options_(options) {}

LiveCache::~LiveCache() {
  std::map<KindRef, std::unique_ptr<KindState>> kinds;
  {
    std::lock_guard lock(mu_);
    kinds.swap(kinds_);
  }
  for (auto& [_, state] : kinds) state->thread.request_stop();
  kinds.clear();  // joins
}

void LiveCache::Track(const KindRef& kind) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = kinds_.try_emplace(kind);
  if (!inserted) return;
  it->second = std::make_unique<KindState>();
  KindState& state = *it->second;
  state.kind = kind;
  state.thread = std::jthread([this, &state](std::stop_token stop) { Run(state, stop); });
}

LiveCache::KindState* LiveCache::Find(const KindRef& kind) const {
  std::lock_guard lock(mu_);
  auto it = kinds_.find(kind);
  return it == kinds_.end() ? nullptr : it->second.get();
}

bool LiveCache::Synced(const KindRef& kind) const {
  KindState* state = Find(kind);
  if (!state) return false;
  std::lock_guard lock(state->mu);
  return state->synced;
}

std::optional<Json> LiveCache::Get(const KindRef& kind, const std::string& key) const {
  KindState* state = Find(kind);
  if (!state) return std::nullopt;
  std::string json;
  {
    std::lock_guard lock(state->mu);
    auto it = state->objects.find(key);
    if (it == state->objects.end()) return std::nullopt;
    json = it->second.json;
  }
  return Json::parse(json);
}

std::string LiveCache::ContentDigest(const KindRef& kind, const std::string& key) const {
  KindState* state = Find(kind);
  if (!state) return "";
  std::lock_guard lock(state->mu);
  auto it = state->objects.find(key);
  return it == state->objects.end() ? "" : it->second.content;
}

std::vector<Json> LiveCache::TrackedOf(const KindRef& kind, std::string_view application) const {
  std::vector<Json> out;
  KindState* state = Find(kind);
  if (!state) return out;
  std::vector<std::string> texts;
  {
    std::lock_guard lock(state->mu);
    for (const auto& [_, entry] : state->objects) {
      if (entry.application == application) texts.push_back(entry.json);
    }
  }
  out.reserve(texts.size());
  for (const std::string& t : texts) out.push_back(Json::parse(t));
  return out;
}

size_t LiveCache::size() const {
  std::vector<KindState*> states;
  {
    std::lock_guard lock(mu_);
    for (const auto& [_, s] : kinds_) states.push_back(s.get());
  }
  size_t n = 0;
  for (KindState* s : states) {
    std::lock_guard lock(s->mu);
    n += s->objects.size();
  }
  return n;
}

void LiveCache::Notify(const std::set<std::string>& applications) const {
  for (const std::string& app : applications) {
    if (!app.empty()) on_change_(app);
  }
}

std::set<std::string> LiveCache::Replace(KindState& state, const std::vector<Json>& items) {
  std::map<std::string, Entry> fresh;
  for (const Json& item : items) {
    fresh[manifest::ObjectKey(item)] = {
        .application = manifest::AnnotationOf(item, sync::kTrackingAnnotation),
        .content = ContentOf(item),
        .json = item.dump()};
  }
  std::set<std::string> touched;
  std::lock_guard lock(state.mu);
  for (const auto& [key, entry] : state.objects) {
    auto it = fresh.find(key);
    if (it == fresh.end() || it->second.content != entry.content) {
      touched.insert(entry.application);
    }
  }
  for (const auto& [key, entry] : fresh) {
    auto it = state.objects.find(key);
    if (it == state.objects.end() || it->second.content != entry.content) {
      touched.insert(entry.application);
    }
  }
  state.objects = std::move(fresh);
  state.synced = true;
  return touched;
}

std::set<std::string> LiveCache::Apply(KindState& state, const kube::WatchEvent& event) {
  if (event.type == kube::WatchEvent::Type::kBookmark) return {};
  std::string key = manifest::ObjectKey(event.object);
  std::string application = manifest::AnnotationOf(event.object, sync::kTrackingAnnotation);
  std::lock_guard lock(state.mu);
  if (event.type == kube::WatchEvent::Type::kDeleted) {
    auto it = state.objects.find(key);
    if (it == state.objects.end()) return {};
    std::set<std::string> touched{it->second.application};
    state.objects.erase(it);
    return touched;
  }
  std::string content = ContentOf(event.object);
  auto [it, added] = state.objects.try_emplace(key);
  Entry& entry = it->second;
  std::set<std::string> touched;
  if (added || entry.content != content || entry.application != application) {
    // A re-annotated object moves to its new owner; the old one sees it leave.
    touched = {entry.application, application};
  }
  entry.application = application;
  entry.content = std::move(content);
  entry.json = event.object.dump();
  return touched;
}

void LiveCache::Run(KindState& state, std::stop_token stop) {
  const std::string selector(sync::kTrackingLabel);
  absl::Duration delay = options_.retry_delay;
  auto backoff = [&] {
    bool running = SleepFor(stop, delay);
    delay = std::min(delay * 2, absl::Seconds(30));
    return running;
  };
  while (!stop.stop_requested()) {
    absl::StatusOr<kube::ListResult> list = kube_->List({.api_version = state.kind.api_version,
                                                         .kind = state.kind.kind,
                                                         .label_selector = selector});
    if (absl::IsNotFound(list.status())) {
      // Not served (yet): nothing of the kind exists.
      Notify(Replace(state, {}));
      if (!SleepFor(stop, options_.unserved_retry)) return;
      continue;
    }
    if (!list.ok()) {
      log::Warn("live cache: cannot list", {{"kind", state.kind.kind},
                                            {"apiVersion", state.kind.api_version},
                                            {"error", list.status()}});
      if (!backoff()) return;
      continue;
    }
    Notify(Replace(state, list->items));
    std::string version = list->resource_version;
    delay = options_.retry_delay;
    // Watch from the list's version until the server says it is too old (then relist).
    while (!stop.stop_requested()) {
      absl::StatusOr<std::string> last =
          kube_->Watch({.api_version = state.kind.api_version,
                        .kind = state.kind.kind,
                        .label_selector = selector,
                        .resource_version = version,
                        .timeout_seconds = options_.watch_timeout_seconds,
                        .stop = stop},
                       [&](const kube::WatchEvent& event) {
                         if (const Json* rv = ResourceVersionField(event.object))
                           version = rv->get<std::string>();
                         Notify(Apply(state, event));
                         return !stop.stop_requested();
                       });
      if (last.ok()) {
        if (!last->empty()) version = *last;
        delay = options_.retry_delay;
        continue;
      }
      if (stop.stop_requested()) return;
      if (absl::IsOutOfRange(last.status())) break;  // 410 Gone: relist
      // A stalled stream resumes; anything else (the kind removed, the server restarted)
      // relists after a pause.
      log::Warn("live cache: watch ended", {{"kind", state.kind.kind}, {"error", last.status()}});
      if (!backoff()) return;
      if (!absl::IsDeadlineExceeded(last.status())) break;
    }
  }
}

}  // namespace driftless::planner
