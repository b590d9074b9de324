#include "common/bus/testing/fake_kv_store.h"

#include <algorithm>
#include <utility>

#include "common/bus/internal/str.h"

namespace driftless::bus::testing {

bool KeyMatches(std::string_view pattern, std::string_view key) {
  std::vector<std::string_view> p = internal::Split(pattern, '.');
  std::vector<std::string_view> k = internal::Split(key, '.');
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == ">") return k.size() > i;
    if (i >= k.size()) return false;
    if (p[i] != "*" && p[i] != k[i]) return false;
  }
  return p.size() == k.size();
}

class FakeKvStore::FakeWatch : public KvWatch {
 public:
  FakeWatch(FakeKvStore* store, std::shared_ptr<Watcher> w) : store_(store), w_(std::move(w)) {}
  ~FakeWatch() override { Stop(); }
  void Stop() override {
    std::lock_guard<std::mutex> lock(store_->mu_);
    w_->active = false;
  }

 private:
  FakeKvStore* store_;
  std::shared_ptr<Watcher> w_;
};

void FakeKvStore::FailAllForTest(absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_ = std::move(status);
}

absl::Status FakeKvStore::EnsureBucket(std::string_view bucket, int history, absl::Duration) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!fail_.ok()) return fail_;
  if (history < 1 || history > 64) return absl::InvalidArgumentError("history not in 1..64");
  buckets_.try_emplace(std::string(bucket));
  return absl::OkStatus();
}

absl::StatusOr<KvEntry> FakeKvStore::Get(std::string_view bucket, std::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!fail_.ok()) return fail_;
  auto b = buckets_.find(bucket);
  if (b == buckets_.end()) return absl::NotFoundError(internal::Cat("no bucket ", bucket));
  auto v = b->second.values.find(std::string(key));
  if (v == b->second.values.end() || v->second.deleted) {
    return absl::NotFoundError(internal::Cat("kv get ", bucket, "/", key, ": no value"));
  }
  return KvEntry{std::string(key), v->second.value, v->second.revision};
}

absl::StatusOr<uint64_t> FakeKvStore::Write(std::string_view bucket, std::string_view key,
                                            std::string_view value, bool deleted,
                                            const uint64_t* expected_revision,
                                            bool only_if_absent) {
  WatchEvent event;
  uint64_t rev = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    auto b = buckets_.find(bucket);
    if (b == buckets_.end()) return absl::NotFoundError(internal::Cat("no bucket ", bucket));
    if (key.empty()) return absl::InvalidArgumentError("empty key");
    Value& v = b->second.values[std::string(key)];
    const bool absent = v.revision == 0 || v.deleted;
    if (only_if_absent && !absent) {
      return absl::AlreadyExistsError(internal::Cat("kv create ", bucket, "/", key, ": exists"));
    }
    if (expected_revision != nullptr && v.revision != *expected_revision) {
      return absl::AbortedError(internal::Cat("kv update ", bucket, "/", key, ": revision is ",
                                              v.revision, ", not ", *expected_revision));
    }
    rev = ++b->second.last_revision;
    v.value = deleted ? "" : std::string(value);
    v.deleted = deleted;
    v.revision = rev;
    event.kind = deleted ? WatchEvent::Kind::kDelete : WatchEvent::Kind::kPut;
    event.entry = KvEntry{std::string(key), v.value, rev};
  }
  Notify(std::string(bucket), event);
  return rev;
}

void FakeKvStore::Notify(const std::string& bucket, const WatchEvent& event) {
  std::vector<std::shared_ptr<Watcher>> targets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& w : watchers_) {
      if (w->active && w->bucket == bucket && KeyMatches(w->pattern, event.entry.key)) {
        targets.push_back(w);
      }
    }
  }
  for (const auto& w : targets) w->callback(event);
}

absl::StatusOr<uint64_t> FakeKvStore::Put(std::string_view bucket, std::string_view key,
                                          std::string_view value) {
  return Write(bucket, key, value, false, nullptr, false);
}

absl::StatusOr<uint64_t> FakeKvStore::Create(std::string_view bucket, std::string_view key,
                                             std::string_view value) {
  return Write(bucket, key, value, false, nullptr, true);
}

absl::StatusOr<uint64_t> FakeKvStore::Update(std::string_view bucket, std::string_view key,
                                             std::string_view value, uint64_t expected_revision) {
  return Write(bucket, key, value, false, &expected_revision, false);
}

absl::Status FakeKvStore::Delete(std::string_view bucket, std::string_view key) {
  return Write(bucket, key, "", true, nullptr, false).status();
}

absl::StatusOr<std::vector<std::string>> FakeKvStore::Keys(std::string_view bucket,
                                                           std::string_view prefix) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!fail_.ok()) return fail_;
  auto b = buckets_.find(bucket);
  if (b == buckets_.end()) return absl::NotFoundError(internal::Cat("no bucket ", bucket));
  std::vector<std::string> keys;
  for (const auto& [k, v] : b->second.values) {
    if (!v.deleted && v.revision != 0 && (k).starts_with(prefix)) keys.push_back(k);
  }
  return keys;
}

absl::StatusOr<std::unique_ptr<KvWatch>> FakeKvStore::Watch(std::string_view bucket,
                                                            std::string_view key_pattern,
                                                            WatchCallback callback) {
  auto w = std::make_shared<Watcher>();
  w->bucket = std::string(bucket);
  w->pattern = key_pattern.empty() ? ">" : std::string(key_pattern);
  w->callback = std::move(callback);
  std::vector<WatchEvent> initial;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    auto b = buckets_.find(bucket);
    if (b == buckets_.end()) return absl::NotFoundError(internal::Cat("no bucket ", bucket));
    std::vector<std::pair<uint64_t, WatchEvent>> current;
    for (const auto& [k, v] : b->second.values) {
      if (v.deleted || v.revision == 0 || !KeyMatches(w->pattern, k)) continue;
      WatchEvent e;
      e.entry = KvEntry{k, v.value, v.revision};
      current.emplace_back(v.revision, e);
    }
    std::sort(current.begin(), current.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [rev, e] : current) initial.push_back(std::move(e));
    watchers_.push_back(w);
  }
  for (const auto& e : initial) w->callback(e);
  WatchEvent done;
  done.kind = WatchEvent::Kind::kInitialValuesDone;
  w->callback(done);
  return std::unique_ptr<KvWatch>(new FakeWatch(this, w));
}

}  // namespace driftless::bus::testing
