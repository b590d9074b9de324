#include "common/bus/nats_kv_store.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>

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

class NatsWatch : public KvWatch {
 public:
  NatsWatch(std::shared_ptr<NatsConnection> connection, std::shared_ptr<void> bucket,
            kvWatcher* watcher, WatchCallback callback)
      : connection_(std::move(connection)),
        bucket_(std::move(bucket)),
        watcher_(watcher),
        callback_(std::move(callback)),
        reconnects_at_start_(connection_->reconnects()) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~NatsWatch() override { Stop(); }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    if (connection_->reconnects() != reconnects_at_start_) {
      // cnats 3.4 bug: after a reconnect it re-creates the watcher's ordered consumer on a
      // thread of its own, and stopping the watcher while that runs reads the freed stream
      // name (jsSub_deleteConsumer; seen with ASan). There is no way to wait for that thread,
      // so after a reconnect the watcher is abandoned instead: our loop stops within its
      // 1 s Next timeout, the ephemeral consumer is removed by the server when the connection
      // closes, and the watcher's memory goes with the process.
      if (thread_.joinable()) thread_.join();
#if defined(__SANITIZE_ADDRESS__)
      __lsan_ignore_object(watcher_);
#endif
      return;
    }
    kvWatcher_Stop(watcher_);  // wakes kvWatcher_Next
    if (thread_.joinable()) thread_.join();
    kvWatcher_Destroy(watcher_);
  }

 private:
  void Loop() {
    while (!stopped_.load()) {
      kvEntry* raw = nullptr;
      natsStatus s = kvWatcher_Next(&raw, watcher_, 1000);
      if (s == NATS_TIMEOUT) continue;
      if (s != NATS_OK) {
        if (stopped_.load() || s == NATS_ILLEGAL_STATE) return;
        continue;
      }
      WatchEvent event;
      if (raw == nullptr) {
        event.kind = WatchEvent::Kind::kInitialValuesDone;
      } else {
        EntryPtr e(raw);
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
  kvWatcher* watcher_;
  WatchCallback callback_;
  const int64_t reconnects_at_start_;
  std::atomic<bool> stopped_{false};
  std::thread thread_;
};

}  // namespace

NatsKvStore::NatsKvStore(std::shared_ptr<NatsConnection> connection)
    : connection_(std::move(connection)) {}

NatsKvStore::~NatsKvStore() = default;

absl::StatusOr<std::shared_ptr<NatsKvStore::Bucket>> NatsKvStore::Open(std::string_view bucket) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = buckets_.find(bucket); it != buckets_.end()) return it->second;
  auto b = std::make_shared<Bucket>();
  const std::string name(bucket);
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
  kvStore* kv = nullptr;
  natsStatus s = js_CreateKeyValue(&kv, connection_->impl()->js, &cfg);
  if (s != NATS_OK) {
    absl::Status err = FromNats(s, internal::Cat("create kv bucket ", bucket));
    // Lost a creation race with another replica: fine if it exists now.
    if (Open(bucket).ok()) return absl::OkStatus();
    return err;
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
  kvEntry* raw = nullptr;
  natsStatus s = kvStore_Get(&raw, b->kv, k.c_str());
  EntryPtr e(raw);
  if (s == NATS_NOT_FOUND) return absl::NotFoundError(What("get", bucket, key) + ": no value");
  if (s != NATS_OK) return FromNats(s, What("get", bucket, key));
  return ToEntry(e.get());
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
  kvWatcher* w = nullptr;
  natsStatus s = kvStore_Watch(&w, b->kv, pattern.c_str(), nullptr);
  if (s != NATS_OK) return FromNats(s, internal::Cat("kv watch ", bucket, "/", pattern));
  return std::unique_ptr<KvWatch>(new NatsWatch(connection_, b, w, std::move(callback)));
}

}  // namespace driftless::bus
