// Content-addressed blobs in a KV bucket, for payloads larger than the NATS max payload (a
// rendered manifest set can be many MB). cnats 3.4 has no object store, so blobs are chunked
// into KV entries:
//   "m.<hex>"          manifest: "size=<bytes> chunks=<n> chunk_size=<bytes>"
//   "c.<hex>.<i>"      chunk i (0-based), at most chunk_size bytes
// where <hex> is the sha256 of the whole blob. Chunks are written before the manifest, so a
// manifest exists only for a complete blob.
//
//   BlobStore blobs(&kv, "blobs");
//   DL_ASSIGN_OR_RETURN(std::string encoded, blobs.EncodePayload(rendered, 64 * 1024));
//   bus.Publish(subject, encoded, msg_id, {});          // consumer side:
//   DL_ASSIGN_OR_RETURN(std::string rendered, blobs.DecodePayload(message.data));
//
// Thread-safe if the KvStore is. The bucket must exist (EnsureBucket(bucket, 1, ttl)); a ttl
// bounds how long unreferenced blobs are kept. Every PutBlob is a new reference: a blob last
// written more than `renew_after` ago (keep it under half the ttl) is written again, so it
// outlives each reference by at least ttl - renew_after. (A reference older than that, e.g. a
// dead letter re-driven days later, finds it gone: GetBlob answers kNotFound. The platform's
// blobs are rendered manifests, which git and the spec can always produce again: the planner
// and applier answer kNotFound by asking for a new generation, which renders them again.)
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/bus/kv_store.h"

namespace driftless::bus {

inline constexpr size_t kDefaultBlobChunkSize = 512 * 1024;

class BlobStore {
 public:
  // `kv` must outlive this object. chunk_size must be > 0 and below the server's max payload.
  BlobStore(KvStore* kv, std::string bucket, size_t chunk_size = kDefaultBlobChunkSize,
            absl::Duration renew_after = absl::Hours(12));

  // Stores `bytes` and returns "sha256:<64 hex>". Idempotent: if a blob with that digest is
  // already complete (and was written less than renew_after ago), nothing is written.
  absl::StatusOr<std::string> PutBlob(std::string_view bytes);

  // The bytes of `digest`. kInvalidArgument for a malformed digest, kNotFound if absent (or
  // expired), kDataLoss if a chunk is missing or the bytes do not match the digest.
  absl::StatusOr<std::string> GetBlob(std::string_view digest);

  // Encodes a payload for a message: 'i' + bytes when bytes.size() <= max_inline, otherwise
  // 'd' + the digest of the stored blob. Empty payloads are inline.
  absl::StatusOr<std::string> EncodePayload(std::string_view bytes, size_t max_inline);

  // Inverse of EncodePayload. kInvalidArgument for an unknown encoding; GetBlob's errors.
  absl::StatusOr<std::string> DecodePayload(std::string_view encoded);

  // Keys used for `hex` (exposed for tests that corrupt or inspect storage).
  static std::string ManifestKey(std::string_view hex);
  static std::string ChunkKey(std::string_view hex, size_t index);

 private:
  KvStore* kv_;
  std::string bucket_;
  size_t chunk_size_;
  absl::Duration renew_after_;
};

}  // namespace driftless::bus
