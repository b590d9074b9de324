#include "common/bus/nats_kv_store.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/clock.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include "common/bus/internal/nats_internal.h"
#include "common/bus/internal/str.h"
#include "common/status/status.h"

namespace driftless::bus {

using internal::FromNats;

struct NatsKvStore::Bucket {
  kvStore* kv = nullptr;
  ~Bucket() {
    if (kv != nullptr) kvStore_Destroy(kv);
  }
};

namespace {

struct EntryDeleter {
  void operator()(kvEntry* e) const { kvEntry_Destroy(e); }
};
using EntryPtr = std::unique_ptr<kvEntry, EntryDeleter>;

std::string What(std::string_view op, std::string_view bucket, std::string_view key) {
  return internal::Cat("kv ", op, " ", bucket, "/", key);
}

KvEntry ToEntry(kvEntry* e) {
  KvEntry out;
  out.key = kvEntry_Key(e);
  const int len = kvEntry_ValueLen(e);
  if (len > 0) out.value.assign(static_cast<const char*>(kvEntry_Value(e)), len);
  out.revision = kvEntry_Revision(e);
  return out;
}

// A watch that survives losing the server it is attached to. cnats re-creates a watcher's
// ordered consumer itself after a reconnect, but in a cluster that re-creation can fail (the
// killed node held the consumer, or the stream has no leader yet) and the watcher then stays
// silent forever. So after every reconnect the loop creates a fresh cnats watcher (retrying
// until it succeeds) and abandons the old one; entries at or below the last revision already
// delivered are skipped (revisions are per bucket and strictly increasing), so callers see
// every current value once more only if it changed, and kInitialValuesDone only once.
class NatsWatch : public KvWatch {
 public:
  NatsWatch(std::shared_ptr<NatsConnection> connection, std::shared_ptr<void> bucket, kvStore* kv,
            std::string pattern, kvWatcher* watcher, int64_t reconnects_at_start,
            WatchCallback callback)
      : connection_(std::move(connection)),
        bucket_(std::move(bucket)),
        kv_(kv),
        pattern_(std::move(pattern)),
        callback_(std::move(callback)),
        current_{watcher, reconnects_at_start} {
    thread_ = std::thread([this] { Loop(); });
  }
  ~NatsWatch() override { Stop(); }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    Watcher current;
    {
      std::lock_guard<std::mutex> lock(mu_);
      current = current_;
      // Wakes kvWatcher_Next unless the watcher must be abandoned (see Release).
      if (current.reconnects == connection_->reconnects()) kvWatcher_Stop(current.watcher);
    }
    if (thread_.joinable()) thread_.join();  // within the 1 s Next timeout at worst
    Release(current);
    for (const Watcher& w : retired_) Release(w);
    retired_.clear();
  }

 private:
  struct Watcher {
    kvWatcher* watcher = nullptr;
    int64_t reconnects = 0;  // connection reconnects when it was created
  };

  // cnats 3.4 bug: after a reconnect it re-creates a watcher's ordered consumer on a thread of
  // its own, and stopping the watcher while that runs reads the freed stream name
  // (jsSub_deleteConsumer; seen with ASan). There is no way to wait for that thread, so a
  // watcher that lived through a reconnect is abandoned instead: nobody calls Next on it any
  // more, so server flow control stops its delivery after a window (bounded memory), its
  // ephemeral consumer goes when the connection closes, and its memory goes with the process.
  void Release(const Watcher& w) {
    if (w.watcher == nullptr) return;
    if (w.reconnects != connection_->reconnects()) {
#if defined(__SANITIZE_ADDRESS__)
      __lsan_ignore_object(w.watcher);
#endif
      return;
    }
    kvWatcher_Stop(w.watcher);
    kvWatcher_Destroy(w.watcher);
  }

  // After a reconnect: a fresh watcher, or false (retried on the next turn of the loop).
  bool Renew(kvWatcher** active) {
    if (stopped_.load() || !connection_->Ready().ok()) return false;
    const int64_t reconnects = connection_->reconnects();
    kvWatcher* fresh = nullptr;
    if (kvStore_Watch(&fresh, kv_, pattern_.c_str(), nullptr) != NATS_OK) return false;
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_.load()) {
      // Stop did not see this one: release it here (Stop releases current_).
      Release(Watcher{fresh, reconnects});
      return false;
    }
    retired_.push_back(current_);
    current_ = Watcher{fresh, reconnects};
    *active = fresh;
    return true;
  }

  void Loop() {
    kvWatcher* active = current_.watcher;
    int64_t active_reconnects = current_.reconnects;
    while (!stopped_.load()) {
      if (connection_->reconnects() != active_reconnects) {
        if (Renew(&active)) {
          std::lock_guard<std::mutex> lock(mu_);
          active_reconnects = current_.reconnects;
        }
      }
      kvEntry* raw = nullptr;
      natsStatus s = kvWatcher_Next(&raw, active, 1000);
      if (s == NATS_TIMEOUT) continue;
      if (s != NATS_OK) {
        if (stopped_.load()) return;
        // A watcher cnats gave up on (stopped, connection closed): wait for a reconnect.
        absl::SleepFor(absl::Milliseconds(200));
        continue;
      }
      WatchEvent event;
      if (raw == nullptr) {
        if (initial_done_) continue;
        initial_done_ = true;
        event.kind = WatchEvent::Kind::kInitialValuesDone;
      } else {
        EntryPtr e(raw);
        const uint64_t revision = kvEntry_Revision(e.get());
        if (revision <= last_revision_) continue;  // already delivered by a previous watcher
        last_revision_ = revision;
        event.entry = ToEntry(e.get());
        const kvOperation op = kvEntry_Operation(e.get());
        event.kind = (op == kvOp_Delete || op == kvOp_Purge) ? WatchEvent::Kind::kDelete
                                                             : WatchEvent::Kind::kPut;
        if (event.kind == WatchEvent::Kind::kDelete) event.entry.value.clear();
      }
      callback_(event);
    }
  }

  std::shared_ptr<NatsConnection> connection_;
  std::shared_ptr<void> bucket_;  // keeps the cnats kvStore alive
  kvStore* kv_;
  const std::string pattern_;
  WatchCallback callback_;
  std::mutex mu_;
  Watcher current_;               // guarded by mu_ (written by the loop, read by Stop)
  std::vector<Watcher> retired_;  // touched by the loop until joined, then by Stop
  bool initial_done_ = false;     // loop thread only
  uint64_t last_revision_ = 0;    // loop thread only
  std::atomic<bool> stopped_{false};
  std::thread thread_;
};

}  // namespace

NatsKvStore::NatsKvStore(std::shared_ptr<NatsConnection> connection, NatsKvStoreOptions options)
    : connection_(std::move(connection)), options_(options) {}

NatsKvStore::~NatsKvStore() = default;

absl::Status NatsKvStore::ReadFromLeader(const std::string& bucket) {
  jsCtx* js = connection_->impl()->js;
  const std::string stream = "KV_" + bucket;
  jsStreamInfo* raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&raw, js, stream.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
    return absl::NotFoundError(internal::Cat("kv bucket ", bucket, " does not exist"));
  }
  if (s != NATS_OK) return FromNats(s, jerr, internal::Cat("kv bucket ", bucket, ": stream info"));
  std::unique_ptr<jsStreamInfo, decltype(&jsStreamInfo_Destroy)> info(raw, jsStreamInfo_Destroy);
  if (!info->Config->AllowDirect) return absl::OkStatus();
  info->Config->AllowDirect = false;
  jsStreamInfo* updated = nullptr;
  s = js_UpdateStream(&updated, js, info->Config, nullptr, &jerr);
  if (updated != nullptr) jsStreamInfo_Destroy(updated);
  if (s != NATS_OK) {
    return FromNats(s, jerr, internal::Cat("kv bucket ", bucket, ": turning direct gets off"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<NatsKvStore::Bucket>> NatsKvStore::Open(std::string_view bucket) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = buckets_.find(bucket); it != buckets_.end()) return it->second;
  auto b = std::make_shared<Bucket>();
  const std::string name(bucket);
  if (options_.replicas > 1) DL_RETURN_IF_ERROR(ReadFromLeader(name));
  natsStatus s = js_KeyValue(&b->kv, connection_->impl()->js, name.c_str());
  if (s == NATS_NOT_FOUND) {
    return absl::NotFoundError(internal::Cat("kv bucket ", bucket, " does not exist"));
  }
  if (s != NATS_OK) return FromNats(s, internal::Cat("kv bucket ", bucket));
  buckets_.emplace(name, b);
  return b;
}

absl::Status NatsKvStore::EnsureBucket(std::string_view bucket, int history, absl::Duration ttl) {
  if (history < 1 || history > 64) {
    return absl::InvalidArgumentError(
        internal::Cat("kv bucket ", bucket, ": history ", history, " not in 1..64"));
  }
  if (Open(bucket).ok()) return absl::OkStatus();
  const std::string name(bucket);
  kvConfig cfg;
  kvConfig_Init(&cfg);
  cfg.Bucket = name.c_str();
  cfg.History = static_cast<uint8_t>(history);
  cfg.TTL = internal::ToNanos(ttl);
  cfg.StorageType = js_FileStorage;
  cfg.Replicas = options_.replicas < 1 ? 1 : options_.replicas;
  kvStore* kv = nullptr;
  natsStatus s = js_CreateKeyValue(&kv, connection_->impl()->js, &cfg);
  if (s != NATS_OK) {
    absl::Status err = FromNats(s, internal::Cat("create kv bucket ", bucket));
    // Lost a creation race with another replica: fine if it exists now.
    if (Open(bucket).ok()) return absl::OkStatus();
    return err;
  }
  if (cfg.Replicas > 1) {
    kvStore_Destroy(kv);  // bound with direct gets: bind again once they are off
    return Open(bucket).status();
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto b = std::make_shared<Bucket>();
  b->kv = kv;
  buckets_.emplace(name, std::move(b));
  return absl::OkStatus();
}

absl::StatusOr<KvEntry> NatsKvStore::Get(std::string_view bucket, std::string_view key) {
  DL_ASSIGN_OR_RETURN(auto b, Open(bucket));
  const std::string k(key);
  const absl::Time deadline = absl::Now() + options_.read_retry_deadline;
  absl::Duration backoff = absl::Milliseconds(50);
  while (true) {
    kvEntry* raw = nullptr;
    natsStatus s = kvStore_Get(&raw, b->kv, k.c_str());
    EntryPtr e(raw);
    if (s == NATS_NOT_FOUND) return absl::NotFoundError(What("get", bucket, key) + ": no value");
    if (s == NATS_OK) return ToEntry(e.get());
    absl::Status err = FromNats(s, What("get", bucket, key));
    // A read is safe to repeat: retried while the stream elects a leader (or reconnects).
    if ((!absl::IsDeadlineExceeded(err) && !absl::IsUnavailable(err)) ||
        absl::Now() + backoff > deadline) {
      return err;
    }
    absl::SleepFor(backoff);  // retry pacing, not synchronisation
    backoff = std::min(backoff * 2, absl::Seconds(1));
  }
}

absl::StatusOr<uint64_t> NatsKvStore::Put(std::string_view bucket, std::string_view key,
                                          std::string_view value) {
  DL_ASSIGN_OR_RETURN(auto b, Open(bucket));
  const std::string k(key);
  uint64_t rev = 0;
  natsStatus s = kvStore_Put(&rev, b->kv, k.c_str(), value.data(), static_cast<int>(value.size()));
  if (s != NATS_OK) return FromNats(s, What("put", bucket, key));
  return rev;
}

absl::StatusOr<uint64_t> NatsKvStore::Create(std::string_view bucket, std::string_view key,
                                             std::string_view value) {
  DL_ASSIGN_OR_RETURN(auto b, Open(bucket));
  const std::string k(key);
  uint64_t rev = 0;
  natsStatus s =
      kvStore_Create(&rev, b->kv, k.c_str(), value.data(), static_cast<int>(value.size()));
  if (s != NATS_OK) {
    absl::Status err = FromNats(s, What("create", bucket, key));
    if (err.code() == absl::StatusCode::kAborted || internal::LastErrorIsWrongLastSequence()) {
      return absl::AlreadyExistsError(internal::Cat(What("create", bucket, key), ": key exists"));
    }
    return err;
  }
  return rev;
}

absl::StatusOr<uint64_t> NatsKvStore::Update(std::string_view bucket, std::string_view key,
                                             std::string_view value, uint64_t expected_revision) {
  DL_ASSIGN_OR_RETURN(auto b, Open(bucket));
  const std::string k(key);
  uint64_t rev = 0;
  natsStatus s = kvStore_Update(&rev, b->kv, k.c_str(), value.data(),
                                static_cast<int>(value.size()), expected_revision);
  if (s != NATS_OK) {
    absl::Status err = FromNats(s, What("update", bucket, key));
    if (err.code() == absl::StatusCode::kAborted || internal::LastErrorIsWrongLastSequence()) {
      return absl::AbortedError(internal::Cat(What("update", bucket, key),
                                              ": revision is no longer ", expected_revision));
    }
    return err;
  }
  return rev;
}

absl::Status NatsKvStore::Delete(std::string_view bucket, std::string_view key) {
  DL_ASSIGN_OR_RETURN(auto b, Open(bucket));
  const std::string k(key);
  natsStatus s = kvStore_Delete(b->kv, k.c_str());
  if (s != NATS_OK) return FromNats(s, What("delete", bucket, key));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> NatsKvStore::Keys(std::string_view bucket,
                                                           std::string_view prefix) {
  DL_ASSIGN_OR_RETURN(auto b, Open(bucket));
  const int64_t timeout_ms = internal::ToMillis(connection_->options().request_timeout);
  std::vector<std::string> keys;
  if (!prefix.empty() && prefix.back() == '.') {
    // A token prefix ("app.web.", "Application."): the server filters by subject, so the cost
    // is the number of matching keys, not of every key in the bucket (history per
    // application in a bucket of every application's history).
    const std::string pattern = internal::Cat(prefix, ">");
    kvWatchOptions wo;
    kvWatchOptions_Init(&wo);
    wo.MetaOnly = true;
    wo.IgnoreDeletes = true;
    kvWatcher* w = nullptr;
    natsStatus s = kvStore_Watch(&w, b->kv, pattern.c_str(), &wo);
    if (s != NATS_OK) return FromNats(s, internal::Cat("kv keys ", bucket, "/", pattern));
    const int64_t deadline = nats_Now() + timeout_ms;
    while (true) {
      kvEntry* e = nullptr;
      s = kvWatcher_Next(&e, w, std::max<int64_t>(1, deadline - nats_Now()));
      if (s != NATS_OK) break;
      if (e == nullptr) break;  // every current value delivered
      if (kvEntry_Operation(e) == kvOp_Put) keys.emplace_back(kvEntry_Key(e));
      kvEntry_Destroy(e);
    }
    kvWatcher_Stop(w);
    kvWatcher_Destroy(w);
    if (s != NATS_OK) return FromNats(s, internal::Cat("kv keys ", bucket, "/", pattern));
    std::sort(keys.begin(), keys.end());
    return keys;
  }
  kvKeysList list{};
  kvWatchOptions wo;
  kvWatchOptions_Init(&wo);
  wo.Timeout = timeout_ms;
  natsStatus s = kvStore_Keys(&list, b->kv, &wo);
  if (s == NATS_NOT_FOUND) return keys;  // empty bucket
  if (s != NATS_OK) return FromNats(s, internal::Cat("kv keys ", bucket));
  for (int i = 0; i < list.Count; ++i) {
    if (std::string_view(list.Keys[i]).starts_with(prefix)) keys.emplace_back(list.Keys[i]);
  }
  kvKeysList_Destroy(&list);
  std::sort(keys.begin(), keys.end());
  return keys;
}

absl::StatusOr<std::unique_ptr<KvWatch>> NatsKvStore::Watch(std::string_view bucket,
                                                            std::string_view key_pattern,
                                                            WatchCallback callback) {
  if (!callback) return absl::InvalidArgumentError("kv watch: empty callback");
  DL_ASSIGN_OR_RETURN(auto b, Open(bucket));
  const std::string pattern(key_pattern.empty() ? ">" : key_pattern);
  const int64_t reconnects = connection_->reconnects();
  kvWatcher* w = nullptr;
  natsStatus s = kvStore_Watch(&w, b->kv, pattern.c_str(), nullptr);
  if (s != NATS_OK) return FromNats(s, internal::Cat("kv watch ", bucket, "/", pattern));
  return std::unique_ptr<KvWatch>(
      new NatsWatch(connection_, b, b->kv, pattern, w, reconnects, std::move(callback)));
}

}  // namespace driftless::bus
