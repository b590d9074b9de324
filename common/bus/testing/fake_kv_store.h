// An in-memory KvStore with the same semantics as NatsKvStore (per-bucket increasing revisions,
// Create only if absent, CAS Update, delete markers, prefix Keys, watches that start with the
// current values). For unit tests of code that keeps state in KV. Thread-safe; watch callbacks
// run synchronously on the writing thread, after the write, outside the store's lock.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/bus/kv_store.h"

namespace driftless::bus::testing {

class FakeKvStore : public KvStore {
 public:
  absl::Status EnsureBucket(std::string_view bucket, int history, absl::Duration ttl) override;
  absl::StatusOr<KvEntry> Get(std::string_view bucket, std::string_view key) override;
  absl::StatusOr<uint64_t> Put(std::string_view bucket, std::string_view key,
                               std::string_view value) override;
  absl::StatusOr<uint64_t> Create(std::string_view bucket, std::string_view key,
                                  std::string_view value) override;
  absl::StatusOr<uint64_t> Update(std::string_view bucket, std::string_view key,
                                  std::string_view value, uint64_t expected_revision) override;
  absl::Status Delete(std::string_view bucket, std::string_view key) override;
  absl::StatusOr<std::vector<std::string>> Keys(std::string_view bucket,
                                                std::string_view prefix) override;
  absl::StatusOr<std::unique_ptr<KvWatch>> Watch(std::string_view bucket,
                                                 std::string_view key_pattern,
                                                 WatchCallback callback) override;

  // Makes every following call fail with `status` (OK to clear), e.g. kUnavailable.
  void FailAllForTest(absl::Status status);

 private:
  struct Value {
    std::string value;
    uint64_t revision = 0;
    bool deleted = false;
  };
  struct Bucket {
    uint64_t last_revision = 0;
    std::map<std::string, Value> values;
  };
  struct Watcher {
    std::string bucket;
    std::string pattern;
    WatchCallback callback;
    bool active = true;
  };
  class FakeWatch;

  absl::StatusOr<uint64_t> Write(std::string_view bucket, std::string_view key,
                                 std::string_view value, bool deleted,
                                 const uint64_t* expected_revision, bool only_if_absent);
  void Notify(const std::string& bucket, const WatchEvent& event);

  std::mutex mu_;
  absl::Status fail_;
  std::map<std::string, Bucket, std::less<>> buckets_;
  std::vector<std::shared_ptr<Watcher>> watchers_;
};

// True if `key` matches the NATS subject pattern (tokens split on '.', '*' one token, '>' rest).
bool KeyMatches(std::string_view pattern, std::string_view key);

}  // namespace driftless::bus::testing
