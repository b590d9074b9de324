// KvStore on JetStream key-value buckets (cnats 3.4 kvStore API). Bucket handles are opened
// lazily and cached. Watches run a cnats watcher on a thread of their own.
//
// Reconnects (a restarted server, or another node of a cluster after one died): after every
// reconnect a watch creates a fresh cnats watcher and skips what it already delivered, so it
// resumes even when cnats' own ordered-consumer reset fails (e.g. the consumer lived on the
// killed node). Known cnats 3.4 issue: stopping a watcher while cnats is resetting its ordered
// consumer can read freed memory inside cnats (jsSub_deleteConsumer error path; seen with
// ASan), so a watcher that lived through a reconnect is abandoned, not destroyed (a few KiB
// and a flow-controlled ephemeral consumer per reconnect, until the connection closes).
// Watches are meant to live as long as the process.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/bus/kv_store.h"
#include "common/bus/nats_connection.h"

namespace driftless::bus {

struct NatsKvStoreOptions {
  // Copies of each bucket EnsureBucket creates (1..5; 3 on a 3-node JetStream cluster). A
  // single server accepts only 1. Existing buckets are left as they are.
  int replicas = 1;
  // How long Get retries a read that timed out or found no responder: on a cluster, reads go
  // to the bucket's stream leader, and after a node loss a new leader takes seconds.
  absl::Duration read_retry_deadline = absl::Seconds(12);
};

class NatsKvStore : public KvStore {
 public:
  explicit NatsKvStore(std::shared_ptr<NatsConnection> connection, NatsKvStoreOptions options = {});
  ~NatsKvStore() override;

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

 private:
  struct Bucket;  // wraps a cnats kvStore*
  absl::StatusOr<std::shared_ptr<Bucket>> Open(std::string_view bucket);
  // Replicated buckets: turns the stream's direct gets off, so that every Get is answered by
  // the stream leader. (cnats creates buckets with AllowDirect, which lets a follower that has
  // not applied a write yet answer a read of it: a Put then a Get could miss the Put.)
  absl::Status ReadFromLeader(const std::string& bucket);

  std::shared_ptr<NatsConnection> connection_;
  const NatsKvStoreOptions options_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Bucket>, std::less<>> buckets_;
};

}  // namespace driftless::bus
