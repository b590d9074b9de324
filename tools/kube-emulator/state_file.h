// Persistence of the emulator's objects across restarts (--state-file), incremental and off the
// request path.
//
// On disk, side by side:
//   <path>      a snapshot, the Store::Dump() format:
//               {"resourceVersion": N, "uidCounter": U, "objects": [{"storeKey":
//               "apps/deployments",
//                "object": {...}}, ...]}  (CustomResourceDefinitions first), replaced atomically
//               (written to <path>.tmp, then renamed);
//   <path>.log  the changes since that snapshot, appended, one JSON object per line:
//               {"rv": N, "uid": U, "storeKey": "apps/deployments", "key": "ns/name",
//                "object": {...}}       a create or an update (the whole object as stored);
//               the same without "object"   a deletion.
//
// StateWriter records the store's changes (Store::RecordChanges) and runs a thread that sleeps
// until the store changes (a change listener; no polling, so an idle emulator costs nothing and
// writes nothing), then appends the new changes to the log, at most once per `batch` interval.
// When the log outgrows max(`compact_min_bytes`, `compact_ratio` x the snapshot), it writes a
// new snapshot and empties the log (compaction). Stop() appends what is left and compacts, so a
// gracefully stopped emulator leaves a snapshot alone.
//
// Loading (LoadState) reads the snapshot, then replays the log (Store::Restore skips changes
// the snapshot already holds, so a crash between the snapshot's rename and the log's truncation
// is harmless). A torn last line (a crash in the middle of an append) is dropped.
//
// Durability: data reach the kernel after each batch (write(2)), not the disk (no fsync): the
// state survives the emulator being killed, not the machine losing power.
//
//   DL_RETURN_IF_ERROR(LoadState(&store, path));
//   StateWriter writer(&store, path, {});
//   DL_RETURN_IF_ERROR(writer.Start());
//   ...
//   DL_RETURN_IF_ERROR(writer.Stop());
//
// Thread-safety: LoadState before the store is shared; StateWriter's Start/Stop/Flush from one
// thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "tools/kube-emulator/store.h"

namespace driftless::kube_emulator {

// The change log's path for a snapshot path.
std::string ChangeLogPath(const std::string& path);

// Loads the snapshot at `path` and replays `path`.log into `store`; either may be missing (a
// fresh start). Errors: kInvalidArgument when the snapshot is not a Dump() value, kDataLoss
// for a malformed log line other than a torn last one, kUnavailable when a file exists but
// cannot be read.
absl::Status LoadState(Store* store, const std::string& path);

struct StateWriterOptions {
  // Minimum time between two appends: changes arriving meanwhile go in one write.
  std::chrono::milliseconds batch{100};
  size_t compact_min_bytes = 8 << 20;
  double compact_ratio = 2.0;
};

class StateWriter {
 public:
  // `store` must outlive the writer.
  StateWriter(Store* store, std::string path, StateWriterOptions options);
  ~StateWriter();  // Stop()
  StateWriter(const StateWriter&) = delete;
  StateWriter& operator=(const StateWriter&) = delete;

  // Records the store's changes from now on and starts the thread; writes a first snapshot
  // when there is none (so that the log always extends a snapshot). Errors: kUnavailable when
  // the files cannot be written.
  absl::Status Start();
  // Appends the pending changes now (test hook; the thread does it by itself). Errors:
  // kUnavailable on a write failure.
  absl::Status Flush();
  // Writes a snapshot now and empties the log. Errors: kUnavailable.
  absl::Status Compact();
  // Stops the thread, appends the pending changes and compacts. Returns the first write error
  // seen since Start (they are also printed to stderr as they happen). Idempotent.
  absl::Status Stop();

  // For tests and benchmarks.
  size_t LogBytesForTest() const { return log_bytes_; }
  int CompactionsForTest() const { return compactions_; }

 private:
  void Loop();
  absl::Status AppendLocked();   // io_mu_ held
  absl::Status CompactLocked();  // io_mu_ held
  void Remember(const absl::Status& status);

  Store* store_;
  std::string path_;
  StateWriterOptions options_;

  std::mutex mu_;  // stop_, changed_
  std::condition_variable cv_;
  bool stop_ = false;
  bool changed_ = false;
  bool started_ = false;
  int listener_ = -1;
  std::thread thread_;

  std::mutex io_mu_;  // the files and the counters below
  std::FILE* log_ = nullptr;
  size_t log_bytes_ = 0;
  size_t snapshot_bytes_ = 0;
  int compactions_ = 0;
  absl::Status first_error_;
};

}  // namespace driftless::kube_emulator
