#include "tools/kube-emulator/controllers.h"

#include <algorithm>
#include <functional>
#include <vector>

#include "absl/strings/numbers.h"

namespace driftless::kube_emulator {
namespace {

using std::chrono::milliseconds;

const Json& Field(const Json& o, const char* f) {
  static const Json empty = Json::object();
  auto it = o.find(f);
  return (it != o.end() && it->is_object()) ? *it : empty;
}

std::string Annotation(const Json& o, const char* name) {
  const Json& a = Field(Field(o, "metadata"), "annotations");
  auto it = a.find(name);
  return (it != a.end() && it->is_string()) ? it->get<std::string>() : "";
}

// A condition, keeping the old times when type/status/reason did not change.
Json Condition(const Json& old_status, const std::string& type, const std::string& status,
               const std::string& reason, const std::string& message, const std::string& now,
               bool update_time) {
  Json c = {{"type", type},
            {"status", status},
            {"reason", reason},
            {"message", message},
            {"lastTransitionTime", now}};
  if (update_time) c["lastUpdateTime"] = now;
  auto it = old_status.find("conditions");
  if (it != old_status.end() && it->is_array()) {
    for (const auto& oc : *it) {
      if (oc.value("type", "") != type) continue;
      if (oc.value("status", "") == status) {
        c["lastTransitionTime"] = oc.value("lastTransitionTime", now);
        if (update_time && oc.value("reason", "") == reason) {
          c["lastUpdateTime"] = oc.value("lastUpdateTime", now);
        }
      }
    }
  }
  return c;
}

std::string TemplateHash(const Json& obj) {
  size_t h = std::hash<std::string>{}(Field(obj, "spec").value("template", Json()).dump());
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::string s;
  for (int i = 0; i < 10; ++i) {
    s += kAlphabet[h % 27];
    h /= 27;
  }
  return s;
}

}  // namespace

StatusDecision SimulateStatus(const ResourceType& rt, const Json& obj, milliseconds elapsed,
                              milliseconds default_delay, const std::string& now) {
  StatusDecision d;
  if (rt.custom && rt.kind != "CustomResourceDefinition") return d;
  const Json& meta = Field(obj, "metadata");
  const Json& spec = Field(obj, "spec");
  const Json& old = Field(obj, "status");
  long long gen = meta.value("generation", 1LL);
  milliseconds delay = default_delay;
  long long ms;
  if (absl::SimpleAtoi(Annotation(obj, kRolloutDelayAnnotation), &ms) && ms >= 0) {
    delay = milliseconds(ms);
  }
  bool fail = Annotation(obj, kFailAnnotation) == "true";
  bool done = elapsed >= delay;
  if (!done) d.recheck_after = delay - elapsed;
  long long replicas = spec.value("replicas", 1LL);
  const std::string& k = rt.kind;
  std::string name = meta.value("name", "");
  d.handled = true;
  Json s = Json::object();
  if (k == "Deployment") {
    std::string rs = name + "-" + TemplateHash(obj);
    s["observedGeneration"] = gen;
    s["replicas"] = replicas;
    bool was_available = false;
    if (old.contains("conditions")) {
      for (const auto& c : old["conditions"]) {
        if (c.value("type", "") == "Available" && c.value("status", "") == "True") {
          was_available = true;
        }
      }
    }
    if (done && !fail) {
      s["updatedReplicas"] = replicas;
      s["readyReplicas"] = replicas;
      s["availableReplicas"] = replicas;
      s["conditions"] = Json::array(
          {Condition(old, "Available", "True", "MinimumReplicasAvailable",
                     "Deployment has minimum availability.", now, true),
           Condition(old, "Progressing", "True", "NewReplicaSetAvailable",
                     "ReplicaSet \"" + rs + "\" has successfully progressed.", now, true)});
    } else {
      s["updatedReplicas"] = done ? replicas : 0;
      s["unavailableReplicas"] = replicas;
      bool avail = was_available && !fail;
      Json available = avail
                           ? Condition(old, "Available", "True", "MinimumReplicasAvailable",
                                       "Deployment has minimum availability.", now, true)
                           : Condition(old, "Available", "False", "MinimumReplicasUnavailable",
                                       "Deployment does not have minimum availability.", now, true);
      Json progressing =
          done ? Condition(old, "Progressing", "False", "ProgressDeadlineExceeded",
                           "ReplicaSet \"" + rs + "\" has timed out progressing.", now, true)
               : Condition(old, "Progressing", "True", "ReplicaSetUpdated",
                           "ReplicaSet \"" + rs + "\" is progressing.", now, true);
      s["conditions"] = Json::array({available, progressing});
    }
    if (replicas == 0) {
      s.erase("unavailableReplicas");
      s["updatedReplicas"] = 0;
      s["readyReplicas"] = 0;
      s["availableReplicas"] = 0;
    }
  } else if (k == "StatefulSet" || k == "ReplicaSet") {
    long long ready = (done && !fail) ? replicas : 0;
    s["observedGeneration"] = gen;
    s["replicas"] = replicas;
    s["readyReplicas"] = ready;
    s["availableReplicas"] = ready;
    if (k == "StatefulSet") {
      std::string rev = name + "-" + TemplateHash(obj);
      s["currentReplicas"] = ready;
      s["updatedReplicas"] = ready;
      s["currentRevision"] = rev;
      s["updateRevision"] = rev;
      s["collisionCount"] = 0;
    } else {
      s["fullyLabeledReplicas"] = replicas;
    }
  } else if (k == "DaemonSet") {
    long long ready = (done && !fail) ? 1 : 0;
    s = {{"observedGeneration", gen},      {"desiredNumberScheduled", 1},
         {"currentNumberScheduled", 1},    {"numberMisscheduled", 0},
         {"numberReady", ready},           {"numberAvailable", ready},
         {"updatedNumberScheduled", ready}};
    if (!ready) s["numberUnavailable"] = 1;
  } else if (k == "Job") {
    std::string start = old.value("startTime", now);
    s["startTime"] = start;
    if (!done) {
      s["active"] = 1;
      s["ready"] = 0;
    } else if (fail) {
      s["failed"] = 1;
      s["ready"] = 0;
      s["conditions"] =
          Json::array({Condition(old, "FailureTarget", "True", "BackoffLimitExceeded",
                                 "Job has reached the specified backoff limit", now, false),
                       Condition(old, "Failed", "True", "BackoffLimitExceeded",
                                 "Job has reached the specified backoff limit", now, false)});
    } else {
      s["succeeded"] = spec.value("completions", 1LL);
      s["ready"] = 0;
      s["completionTime"] = old.value("completionTime", now);
      s["conditions"] =
          Json::array({Condition(old, "SuccessCriteriaMet", "True", "CompletionsReached",
                                 "Reached expected number of succeeded pods", now, false),
                       Condition(old, "Complete", "True", "CompletionsReached",
                                 "Reached expected number of succeeded pods", now, false)});
    }
    d.recheck_after = done ? std::nullopt : d.recheck_after;
  } else if (k == "Pod") {
    Json statuses = Json::array();
    bool ready = done && !fail;
    if (spec.contains("containers") && spec["containers"].is_array()) {
      for (const auto& c : spec["containers"]) {
        Json st = {{"name", c.value("name", "")},
                   {"image", c.value("image", "")},
                   {"ready", ready},
                   {"restartCount", 0}};
        if (ready)
          st["state"] = {{"running", {{"startedAt", old.value("startTime", now)}}}};
        else if (fail && done) {
          st["state"] = {{"waiting", {{"reason", "CrashLoopBackOff"}}}};
        } else {
          st["state"] = {{"waiting", {{"reason", "ContainerCreating"}}}};
        }
        statuses.push_back(st);
      }
    }
    s = {{"phase", done ? "Running" : "Pending"},
         {"startTime", old.value("startTime", now)},
         {"podIP", "10.244.0." + std::to_string(std::hash<std::string>{}(name) % 250 + 2)},
         {"hostIP", "172.18.0.2"},
         {"containerStatuses", statuses},
         {"conditions",
          Json::array({Condition(old, "Ready", ready ? "True" : "False",
                                 ready ? "" : "ContainersNotReady", "", now, false),
                       Condition(old, "ContainersReady", ready ? "True" : "False",
                                 ready ? "" : "ContainersNotReady", "", now, false)})}};
  } else if (k == "HorizontalPodAutoscaler" && obj.value("apiVersion", "") != "autoscaling/v1") {
    // What the HPA controller reports once it has metrics: at minReplicas, within range.
    // (autoscaling/v1 keeps conditions in an annotation, which a status write cannot set.)
    if (!done) return StatusDecision{false, Json(), d.recheck_after};
    const long long current = spec.value("minReplicas", 1LL);
    s = {
        {"currentReplicas", current},
        {"desiredReplicas", current},
        {"currentMetrics", Json::array()},
        {"conditions",
         Json::array({Condition(old, "AbleToScale", "True", "ReadyForNewScale",
                                "recommended size matches current size", now, false),
                      Condition(old, "ScalingActive", "True", "ValidMetricFound",
                                "the HPA was able to successfully calculate a replica count "
                                "from cpu resource utilization (percentage of request)",
                                now, false),
                      Condition(old, "ScalingLimited", "False", "DesiredWithinRange",
                                "the desired count is within the acceptable range", now, false)})}};
  } else if (k == "PersistentVolumeClaim") {
    if (!done) {
      s = {{"phase", "Pending"}};
    } else {
      s = {{"phase", "Bound"},
           {"accessModes", spec.value("accessModes", Json::array({"ReadWriteOnce"}))}};
      Json req = Field(Field(spec, "resources"), "requests");
      if (req.contains("storage")) s["capacity"] = {{"storage", req["storage"]}};
    }
  } else if (k == "CustomResourceDefinition") {
    d.recheck_after.reset();
    Json stored = Json::array();
    if (spec.contains("versions") && spec["versions"].is_array()) {
      for (const auto& v : spec["versions"]) {
        if (v.value("storage", false)) stored.push_back(v.value("name", ""));
      }
    }
    s = {{"acceptedNames", spec.value("names", Json::object())},
         {"storedVersions", stored},
         {"conditions",
          Json::array({Condition(old, "NamesAccepted", "True", "NoConflicts", "no conflicts found",
                                 now, false),
                       Condition(old, "Established", "True", "InitialNamesAccepted",
                                 "the initial names have been accepted", now, false)})}};
  } else if ((k == "Service" && spec.value("type", "") == "LoadBalancer") || k == "Ingress") {
    if (!done) return StatusDecision{false, Json(), d.recheck_after};
    s = {{"loadBalancer", {{"ingress", Json::array({{{"ip", "127.0.0.1"}}})}}}};
  } else {
    d.handled = false;
    d.recheck_after.reset();
    return d;
  }
  d.status = std::move(s);
  return d;
}

Controllers::Controllers(Store* store, const Clock* clock, ControllerOptions options)
    : store_(store), clock_(clock), options_(options) {}

Controllers::~Controllers() { Stop(); }

void Controllers::Reconcile(const std::string& store_key, const std::string& key, bool* wrote) {
  auto types = store_->registry().VersionsOf(store_key);
  if (types.empty()) return;
  const ResourceType& rt = *types.front();
  size_t slash = key.find('/');
  std::string ns = key.substr(0, slash), name = key.substr(slash + 1);
  std::string full = store_key + "|" + key;
  auto obj = store_->Get(rt, ns, name);
  if (!obj.ok()) {
    seen_.erase(full);
    due_.erase(full);
    return;
  }
  const Json& meta = Field(*obj, "metadata");
  if (store_->IsPinned(rt, ns, name) || !meta.value("deletionTimestamp", "").empty()) {
    due_.erase(full);  // not ours (any more): never due again
    return;
  }
  auto now = clock_->Now();
  Seen& seen = seen_[full];
  std::string uid = meta.value("uid", "");
  long long gen = meta.value("generation", 1LL);
  if (seen.uid != uid || seen.generation != gen) seen = Seen{uid, gen, now};
  auto elapsed = std::chrono::duration_cast<milliseconds>(now - seen.since);
  StatusDecision d = SimulateStatus(rt, *obj, elapsed, options_.rollout_delay, Rfc3339(now));
  if (d.recheck_after) {
    due_[full] = now + *d.recheck_after;
  } else {
    due_.erase(full);
  }
  if (!d.handled) return;
  if (obj->value("status", Json()) == d.status) return;
  if (store_->WriteStatus(rt, ns, name, d.status).ok()) *wrote = true;
}

int Controllers::RunOnce() {
  ++passes_;
  int writes = 0;
  std::vector<std::pair<std::string, std::string>> changed;
  long long next = 0;
  bool complete = cursor_ >= 0 && store_->ChangedSince(cursor_, &changed, &next);
  if (!complete) {
    // First pass or history overflow: look at everything.
    changed.clear();
    next = store_->ResourceVersion();
    for (const auto& rt : store_->registry().All()) {
      for (const auto& o : store_->Objects(rt->StoreKey())) {
        const Json& m = Field(*o, "metadata");
        changed.emplace_back(rt->StoreKey(), m.value("namespace", "") + "/" + m.value("name", ""));
      }
    }
  }
  cursor_ = next;
  std::set<std::string> done;
  for (const auto& [sk, key] : changed) {
    if (!done.insert(sk + "|" + key).second) continue;
    bool wrote = false;
    Reconcile(sk, key, &wrote);
    writes += wrote;
  }
  auto now = clock_->Now();
  std::vector<std::string> due;
  for (const auto& [full, t] : due_) {
    if (t <= now && !done.count(full)) due.push_back(full);
  }
  for (const auto& full : due) {
    size_t bar = full.find('|');
    bool wrote = false;
    Reconcile(full.substr(0, bar), full.substr(bar + 1), &wrote);
    writes += wrote;
  }
  store_->FinishNamespaceDeletion();
  return writes;
}

std::optional<std::chrono::system_clock::time_point> Controllers::NextDue() const {
  std::optional<std::chrono::system_clock::time_point> next;
  for (const auto& [full, t] : due_) {
    if (!next || t < *next) next = t;
  }
  return next;
}

void Controllers::Start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = false;
  }
  listener_ = store_->AddChangeListener([this] {
    std::lock_guard lock(mu_);
    if (!changed_) {
      changed_ = true;
      cv_.notify_one();
    }
  });
  thread_ = std::thread([this] { Loop(); });
}

void Controllers::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    changed_ = false;
    lock.unlock();
    RunOnce();
    auto due = NextDue();
    lock.lock();
    // At most one pass per tick: a burst of writes is handled in one pass.
    if (cv_.wait_for(lock, options_.tick, [this] { return stop_; })) break;
    auto woken = [this] { return stop_ || changed_; };
    if (!due) {
      cv_.wait(lock, woken);
      continue;
    }
    // The injected clock says when; sleep at most a second at a time in case it jumps.
    auto wait = std::chrono::duration_cast<milliseconds>(*due - clock_->Now());
    wait = std::clamp(wait, milliseconds(0), milliseconds(1000));
    cv_.wait_for(lock, wait, woken);
  }
}

void Controllers::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (listener_ >= 0) {
    store_->RemoveChangeListener(listener_);
    listener_ = -1;
  }
}

}  // namespace driftless::kube_emulator
