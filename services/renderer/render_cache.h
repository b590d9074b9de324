// The renderer's cache of finished renders, keyed by everything a render depends on (the
// application's source and destination, the commit, the tool versions): re-rendering an
// unchanged input is a lookup. Entries hold the encoded manifests (inline or blob digests), so
// a hit publishes the same app.rendered without touching git or a tool. Least recently used
// entries go first once `max_bytes` is passed.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace driftless::renderer {

struct CachedRender {
  std::string manifests;     // a serialized driftless.v1.ManifestPayload
  bool blob_backed = false;  // the manifests are a blob digest (they expire with the blob)
  std::chrono::steady_clock::time_point stored_at;  // when rendered
  std::string render_digest;
  std::string generator;
  int64_t objects = 0;
  std::vector<std::string> reads;
  std::string reads_uid;  // the incarnation whose read set (readsets bucket) holds `reads`
};

class RenderCache {
 public:
  explicit RenderCache(uint64_t max_bytes = 64ull << 20) : max_bytes_(max_bytes) {}

  std::optional<CachedRender> Get(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    order_.splice(order_.begin(), order_, it->second.position);
    return it->second.value;
  }

  void Put(const std::string& key, CachedRender value) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = entries_.find(key); it != entries_.end()) Erase(it);
    const uint64_t size = SizeOf(key, value);
    if (size > max_bytes_) return;
    order_.push_front(key);
    entries_.emplace(key, Slot{std::move(value), order_.begin(), size});
    bytes_ += size;
    while (bytes_ > max_bytes_ && !order_.empty()) Erase(entries_.find(order_.back()));
  }

 private:
  struct Slot {
    CachedRender value;
    std::list<std::string>::iterator position;
    uint64_t size = 0;
  };

  static uint64_t SizeOf(const std::string& key, const CachedRender& v) {
    uint64_t size =
        key.size() + v.manifests.size() + v.render_digest.size() + v.reads_uid.size() + 64;
    for (const std::string& r : v.reads) size += r.size() + 32;
    return size;
  }

  void Erase(std::map<std::string, Slot>::iterator it) {
    bytes_ -= it->second.size;
    order_.erase(it->second.position);
    entries_.erase(it);
  }

  const uint64_t max_bytes_;
  std::mutex mu_;
  std::list<std::string> order_;  // most recent first
  std::map<std::string, Slot> entries_;
  uint64_t bytes_ = 0;
};

}  // namespace driftless::renderer
