#include "common/bus/blob_store.h"

#include <utility>

#include "absl/time/clock.h"
#include "common/bus/internal/str.h"
#include "common/manifest/manifest.h"
#include "common/status/status.h"

namespace driftless::bus {
namespace {

constexpr std::string_view kDigestPrefix = "sha256:";
constexpr char kInlineTag = 'i';
constexpr char kDigestTag = 'd';

struct BlobManifest {
  uint64_t size = 0;
  uint64_t chunks = 0;
  uint64_t chunk_size = 0;
  uint64_t written = 0;  // unix seconds of the last (re)write; 0 in manifests from before it
};

std::string EncodeManifest(const BlobManifest& m) {
  return internal::Cat("size=", m.size, " chunks=", m.chunks, " chunk_size=", m.chunk_size,
                       " written=", m.written);
}

absl::StatusOr<BlobManifest> DecodeManifest(std::string_view text, std::string_view digest) {
  BlobManifest m;
  int seen = 0;
  for (std::string_view field : internal::Split(text, ' ')) {
    const size_t eq = field.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = field.substr(0, eq);
    if (name == "written") {
      (void)internal::ParseInt(field.substr(eq + 1), &m.written);
      continue;
    }
    uint64_t* target = name == "size"         ? &m.size
                       : name == "chunks"     ? &m.chunks
                       : name == "chunk_size" ? &m.chunk_size
                                              : nullptr;
    if (target == nullptr || !internal::ParseInt(field.substr(eq + 1), target)) continue;
    ++seen;
  }
  if (seen != 3 || (m.size > 0 && (m.chunk_size == 0 || m.chunks == 0)) ||
      (m.chunk_size > 0 && m.chunks != (m.size + m.chunk_size - 1) / m.chunk_size)) {
    return absl::DataLossError(
        internal::Cat("blob ", digest, ": malformed manifest \"", text, "\""));
  }
  return m;
}

bool IsHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

BlobStore::BlobStore(KvStore* kv, std::string bucket, size_t chunk_size, absl::Duration renew_after)
    : kv_(kv),
      bucket_(std::move(bucket)),
      chunk_size_(chunk_size == 0 ? 1 : chunk_size),
      renew_after_(renew_after) {}

std::string BlobStore::ManifestKey(std::string_view hex) { return internal::Cat("m.", hex); }

std::string BlobStore::ChunkKey(std::string_view hex, size_t index) {
  return internal::Cat("c.", hex, ".", index);
}

absl::StatusOr<std::string> BlobStore::PutBlob(std::string_view bytes) {
  const std::string hex = manifest::Sha256Hex(bytes);
  const std::string digest = internal::Cat(kDigestPrefix, hex);
  const absl::Time now = absl::Now();
  absl::StatusOr<KvEntry> existing = kv_->Get(bucket_, ManifestKey(hex));
  if (existing.ok()) {
    // Complete already (content addressing makes it identical). Written long enough ago
    // that the bucket's TTL could expire it under the new reference: written again.
    absl::StatusOr<BlobManifest> old = DecodeManifest(existing->value, digest);
    if (old.ok() && old->written > 0 &&
        now - absl::FromUnixSeconds(static_cast<int64_t>(old->written)) < renew_after_) {
      return digest;
    }
  } else if (existing.status().code() != absl::StatusCode::kNotFound) {
    return Annotate(existing.status(), internal::Cat("put blob ", digest));
  }
  BlobManifest m;
  m.size = bytes.size();
  m.chunk_size = chunk_size_;
  m.chunks = (bytes.size() + chunk_size_ - 1) / chunk_size_;
  m.written = static_cast<uint64_t>(absl::ToUnixSeconds(now));
  for (uint64_t i = 0; i < m.chunks; ++i) {
    std::string_view chunk = bytes.substr(i * chunk_size_, chunk_size_);
    absl::StatusOr<uint64_t> rev = kv_->Put(bucket_, ChunkKey(hex, i), chunk);
    if (!rev.ok()) return Annotate(rev.status(), internal::Cat("put blob ", digest, " chunk ", i));
  }
  // The manifest last: it exists only for a complete blob.
  absl::StatusOr<uint64_t> rev = kv_->Put(bucket_, ManifestKey(hex), EncodeManifest(m));
  if (!rev.ok()) return Annotate(rev.status(), internal::Cat("put blob ", digest, " manifest"));
  return digest;
}

absl::StatusOr<std::string> BlobStore::GetBlob(std::string_view digest) {
  if (!(digest).starts_with(kDigestPrefix) || !IsHex64(digest.substr(kDigestPrefix.size()))) {
    return absl::InvalidArgumentError(
        internal::Cat("blob digest \"", digest, "\" is not sha256:<64 lower-case hex>"));
  }
  const std::string_view hex = digest.substr(kDigestPrefix.size());
  absl::StatusOr<KvEntry> entry = kv_->Get(bucket_, ManifestKey(hex));
  if (entry.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(internal::Cat("blob ", digest, " not found in bucket ", bucket_));
  }
  DL_RETURN_IF_ERROR(Annotate(entry.status(), internal::Cat("get blob ", digest)));
  DL_ASSIGN_OR_RETURN(BlobManifest m, DecodeManifest(entry->value, digest));
  std::string out;
  out.reserve(m.size);
  for (uint64_t i = 0; i < m.chunks; ++i) {
    absl::StatusOr<KvEntry> chunk = kv_->Get(bucket_, ChunkKey(hex, i));
    if (chunk.status().code() == absl::StatusCode::kNotFound) {
      return absl::DataLossError(
          internal::Cat("blob ", digest, ": chunk ", i, " of ", m.chunks, " is missing"));
    }
    DL_RETURN_IF_ERROR(Annotate(chunk.status(), internal::Cat("get blob ", digest, " chunk ", i)));
    out += chunk->value;
  }
  if (out.size() != m.size) {
    return absl::DataLossError(
        internal::Cat("blob ", digest, ": ", out.size(), " bytes read, manifest says ", m.size));
  }
  if (manifest::Sha256Hex(out) != hex) {
    return absl::DataLossError(
        internal::Cat("blob ", digest, ": content does not match its digest (corrupted chunk)"));
  }
  return out;
}

absl::StatusOr<std::string> BlobStore::EncodePayload(std::string_view bytes, size_t max_inline) {
  if (bytes.size() <= max_inline) {
    std::string out;
    out.reserve(bytes.size() + 1);
    out.push_back(kInlineTag);
    out.append(bytes);
    return out;
  }
  DL_ASSIGN_OR_RETURN(std::string digest, PutBlob(bytes));
  return std::string(1, kDigestTag) + digest;
}

absl::StatusOr<std::string> BlobStore::DecodePayload(std::string_view encoded) {
  if (encoded.empty()) {
    return absl::InvalidArgumentError("encoded payload is empty (expected a tag byte)");
  }
  switch (encoded[0]) {
    case kInlineTag:
      return std::string(encoded.substr(1));
    case kDigestTag:
      return GetBlob(encoded.substr(1));
    default:
      return absl::InvalidArgumentError(
          internal::Cat("encoded payload has unknown tag byte ", static_cast<int>(encoded[0])));
  }
}

}  // namespace driftless::bus
