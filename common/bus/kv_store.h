// The state store: buckets of key -> bytes with a revision per write, compare-and-set updates
// and watches. The state of record of driftless (applications, status, history, leases, blobs)
// lives here.
//
//   DL_RETURN_IF_ERROR(kv.EnsureBucket("apps", /*history=*/5, absl::ZeroDuration()));
//   DL_ASSIGN_OR_RETURN(KvEntry e, kv.Get("apps", "guestbook"));
//   absl::StatusOr<uint64_t> rev = kv.Update("apps", "guestbook", Mutate(e.value), e.revision);
//   if (rev.status().code() == absl::StatusCode::kAborted) { /* lost a race: re-read, retry */ }
//
// Keys: [-/_=.A-Za-z0-9]+, no leading/trailing/double '.'. Revisions are strictly increasing per
// bucket (not per key). All methods are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace driftless::bus {

struct KvEntry {
  std::string key;
  std::string value;
  uint64_t revision = 0;
};

struct WatchEvent {
  enum class Kind {
    kPut,
    kDelete,             // value is empty
    kInitialValuesDone,  // every value existing when the watch started has been delivered
  };
  Kind kind = Kind::kPut;
  KvEntry entry;
};

// A running watch; destroying it (or Stop) stops callbacks and waits for the running one.
class KvWatch {
 public:
  virtual ~KvWatch() = default;
  virtual void Stop() = 0;
};

// Called on the watch's own thread, one event at a time. Must not throw.
using WatchCallback = std::function<void(const WatchEvent&)>;

class KvStore {
 public:
  virtual ~KvStore() = default;

  // Creates the bucket if absent, keeping `history` values per key (1..64) and dropping values
  // older than `ttl` (zero: forever). An existing bucket is left as it is.
  virtual absl::Status EnsureBucket(std::string_view bucket, int history, absl::Duration ttl) = 0;

  // The current value. kNotFound if the key never existed or was deleted, or no such bucket.
  virtual absl::StatusOr<KvEntry> Get(std::string_view bucket, std::string_view key) = 0;

  // Unconditional write; returns the new revision.
  virtual absl::StatusOr<uint64_t> Put(std::string_view bucket, std::string_view key,
                                       std::string_view value) = 0;

  // Writes only if the key has no current value (never written, or deleted).
  // kAlreadyExists otherwise.
  virtual absl::StatusOr<uint64_t> Create(std::string_view bucket, std::string_view key,
                                          std::string_view value) = 0;

  // Compare-and-set: writes only if the key's current revision is `expected_revision`.
  // kAborted on mismatch (someone else wrote first: re-read and retry).
  virtual absl::StatusOr<uint64_t> Update(std::string_view bucket, std::string_view key,
                                          std::string_view value, uint64_t expected_revision) = 0;

  // Deletes the current value (a delete marker is kept in history). OK if already absent.
  virtual absl::Status Delete(std::string_view bucket, std::string_view key) = 0;

  // Keys with a current value that start with `prefix` (empty: all), sorted.
  virtual absl::StatusOr<std::vector<std::string>> Keys(std::string_view bucket,
                                                        std::string_view prefix) = 0;

  // Watches keys matching `key_pattern` (NATS wildcards: "apps.*", ">" for all): first every
  // current value, then kInitialValuesDone, then every put and delete as it happens.
  virtual absl::StatusOr<std::unique_ptr<KvWatch>> Watch(std::string_view bucket,
                                                         std::string_view key_pattern,
                                                         WatchCallback callback) = 0;
};

}  // namespace driftless::bus
