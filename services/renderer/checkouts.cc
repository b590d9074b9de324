#include "services/renderer/checkouts.h"

#include <algorithm>
#include <filesystem>

#include "common/manifest/manifest.h"
#include "common/strings/str.h"

namespace driftless::renderer {

namespace fs = std::filesystem;

CheckoutCache::Checkout::~Checkout() {
  std::error_code ignored;
  if (!path.empty()) fs::remove_all(path, ignored);
}

CheckoutCache::CheckoutCache(git::GitClient* git, std::string dir, size_t keep)
    : git_(git), dir_(std::move(dir)), keep_(std::max<size_t>(keep, 1)) {
  std::error_code ec;
  fs::remove_all(dir_, ec);
  fs::create_directories(dir_, ec);
  dir_ = fs::absolute(dir_, ec).lexically_normal().string();
}

absl::StatusOr<CheckoutCache::Handle> CheckoutCache::Get(const std::string& url,
                                                         const std::string& commit,
                                                         const std::string& subpath) {
  const std::string key = strings::Cat(url, " ", commit, " ", subpath);
  std::shared_ptr<Entry> entry;
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::shared_ptr<Entry>& slot = entries_[key];
    if (slot == nullptr) slot = std::make_shared<Entry>();
    entry = slot;
    recent_.remove(key);
    recent_.push_front(key);
    while (recent_.size() > keep_) {
      // Dropping the cache's reference: the directory goes when the last render lets go.
      entries_.erase(recent_.back());
      recent_.pop_back();
    }
    id = ++next_id_;
  }
  std::lock_guard<std::mutex> lock(entry->mu);
  if (entry->checkout != nullptr) return entry->checkout;
  auto checkout = std::make_shared<Checkout>();
  const std::string path = strings::Cat(dir_, "/", manifest::Sha256Hex(url).substr(0, 12), "-",
                                        commit.substr(0, 12), "-", id);
  const std::string dest = subpath.empty() ? path : strings::Cat(path, "/", subpath);
  if (absl::Status s = git_->Checkout(url, commit, dest, subpath).status(); !s.ok()) {
    std::error_code ignored;
    fs::remove_all(path, ignored);
    return s;
  }
  checkout->path = path;
  entry->checkout = checkout;
  return Handle(checkout);
}

}  // namespace driftless::renderer
