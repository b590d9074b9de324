#include "common/git/testing/fake_git_client.h"

#include <filesystem>
#include <fstream>

#include "common/git/url.h"

namespace driftless::git::testing {

namespace fs = std::filesystem;

void FakeGitClient::SetRef(std::string_view url, std::string_view ref, std::string_view commit) {
  std::lock_guard<std::mutex> lock(mu_);
  remote_[std::string(url)].refs[std::string(ref)] = std::string(commit);
}

void FakeGitClient::DeleteRef(std::string_view url, std::string_view ref) {
  std::lock_guard<std::mutex> lock(mu_);
  remote_[std::string(url)].refs.erase(std::string(ref));
}

void FakeGitClient::SetCommit(std::string_view url, std::string_view commit, Files files) {
  std::lock_guard<std::mutex> lock(mu_);
  remote_[std::string(url)].commits[std::string(commit)] = std::move(files);
}

void FakeGitClient::SetError(std::string_view url, absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  remote_[std::string(url)].error = std::move(status);
}

int FakeGitClient::CallCount(std::string_view url, std::string_view method) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = calls_.find(std::string(url) + " " + std::string(method));
  return it == calls_.end() ? 0 : it->second;
}

absl::Status FakeGitClient::Enter(std::string_view url, std::string_view method) {
  ++calls_[std::string(url) + " " + std::string(method)];
  auto it = remote_.find(url);
  return it == remote_.end() ? absl::OkStatus() : it->second.error;
}

absl::StatusOr<RefMap> FakeGitClient::ListRemoteRefs(std::string_view url, const Credentials&) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status s = Enter(url, "ListRemoteRefs"); !s.ok()) return s;
  auto it = remote_.find(url);
  if (it == remote_.end())
    return absl::NotFoundError("repository " + RedactUrl(url) + " not found");
  return it->second.refs;
}

absl::StatusOr<RefMap> FakeGitClient::Fetch(std::string_view url, const Credentials&) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status s = Enter(url, "Fetch"); !s.ok()) return s;
  auto it = remote_.find(url);
  if (it == remote_.end())
    return absl::NotFoundError("repository " + RedactUrl(url) + " not found");
  Repo& m = mirror_[std::string(url)];
  m.refs = it->second.refs;
  for (const auto& [sha, files] : it->second.commits) m.commits[sha] = files;
  return m.refs;
}

absl::StatusOr<std::string> FakeGitClient::ExpandLocked(std::string_view url,
                                                        std::string_view sha) {
  auto it = mirror_.find(url);
  if (it == mirror_.end()) {
    return absl::NotFoundError("no mirror of " + RedactUrl(url) + " in the cache; fetch it first");
  }
  if (!LooksLikeSha(sha)) return absl::InvalidArgumentError("commit \"" + std::string(sha) + "\"");
  std::string found;
  for (const auto& [full, files] : it->second.commits) {
    if (!full.starts_with(sha)) continue;
    if (!found.empty()) {
      return absl::InvalidArgumentError("commit " + std::string(sha) + " is ambiguous");
    }
    found = full;
  }
  if (found.empty()) {
    return absl::NotFoundError("commit " + std::string(sha) + " not found in the mirror of " +
                               RedactUrl(url));
  }
  return found;
}

absl::StatusOr<std::string> FakeGitClient::ExpandCommit(std::string_view url,
                                                        std::string_view sha) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status s = Enter(url, "ExpandCommit"); !s.ok()) return s;
  return ExpandLocked(url, sha);
}

absl::StatusOr<CheckoutResult> FakeGitClient::Checkout(std::string_view url,
                                                       std::string_view commit,
                                                       const std::string& dest_dir,
                                                       std::string_view subpath) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status s = Enter(url, "Checkout"); !s.ok()) return s;
  std::string sub(subpath);
  while (sub.starts_with("./")) sub.erase(0, 2);
  while (!sub.empty() && sub.back() == '/') sub.pop_back();
  if (sub.starts_with("/") || sub == ".." || sub.starts_with("../") ||
      sub.find("/../") != std::string::npos || sub.ends_with("/..")) {
    return absl::InvalidArgumentError("path \"" + std::string(subpath) + "\" in " + RedactUrl(url) +
                                      " must not contain \"..\"");
  }
  absl::StatusOr<std::string> full = ExpandLocked(url, commit);
  if (!full.ok()) return full.status();
  const Files& files = mirror_.find(url)->second.commits.at(*full);
  std::string prefix = sub.empty() ? "" : sub + "/";
  CheckoutResult result{*full, 0, 0, {}};
  bool any = sub.empty();
  fs::create_directories(dest_dir);
  for (const auto& [path, content] : files) {
    if (!path.starts_with(prefix)) continue;
    any = true;
    fs::path out = fs::path(dest_dir) / path.substr(prefix.size());
    fs::create_directories(out.parent_path());
    std::ofstream(out, std::ios::binary) << content;
    ++result.files;
    result.bytes += content.size();
  }
  if (!any) {
    return absl::NotFoundError("path " + sub + " not found in " + RedactUrl(url) + " at commit " +
                               *full);
  }
  return result;
}

absl::StatusOr<std::vector<std::string>> FakeGitClient::ChangedPaths(std::string_view url,
                                                                     std::string_view from_commit,
                                                                     std::string_view to_commit) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status s = Enter(url, "ChangedPaths"); !s.ok()) return s;
  static const Files kEmpty;
  const Files* from = &kEmpty;
  if (!from_commit.empty()) {
    absl::StatusOr<std::string> f = ExpandLocked(url, from_commit);
    if (!f.ok()) return f.status();
    from = &mirror_.find(url)->second.commits.at(*f);
  }
  absl::StatusOr<std::string> t = ExpandLocked(url, to_commit);
  if (!t.ok()) return t.status();
  const Files& to = mirror_.find(url)->second.commits.at(*t);
  std::set<std::string> changed;
  for (const auto& [path, content] : *from) {
    auto it = to.find(path);
    if (it == to.end() || it->second != content) changed.insert(path);
  }
  for (const auto& [path, content] : to) {
    if (!from->contains(path)) changed.insert(path);
  }
  return std::vector<std::string>(changed.begin(), changed.end());
}

}  // namespace driftless::git::testing
