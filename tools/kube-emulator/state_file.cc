#include "tools/kube-emulator/state_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <vector>

namespace driftless::kube_emulator {
namespace {

absl::Status IoError(const std::string& what, const std::string& path) {
  return absl::UnavailableError(what + " " + path + ": " + std::strerror(errno));
}

// Reads a whole file. `*exists` false (and OK) when it is not there.
absl::Status ReadWholeFile(const std::string& path, std::string* out, bool* exists) {
  std::error_code ec;
  *exists = std::filesystem::exists(path, ec);
  if (!*exists) return absl::OkStatus();
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("cannot read", path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return IoError("cannot read", path);
  *out = std::move(ss).str();
  return absl::OkStatus();
}

// One log line as a change. Errors: kDataLoss.
absl::StatusOr<StoreChange> ParseChange(std::string_view line) {
  Json j = Json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return absl::DataLossError("not a JSON object");
  auto rv = j.find("rv");
  auto uid = j.find("uid");
  auto sk = j.find("storeKey");
  auto key = j.find("key");
  if (rv == j.end() || !rv->is_number_integer() || uid == j.end() || !uid->is_number_integer() ||
      sk == j.end() || !sk->is_string() || key == j.end() || !key->is_string()) {
    return absl::DataLossError("expected rv, uid, storeKey and key");
  }
  StoreChange c;
  c.rv = rv->get<long long>();
  c.uid_counter = uid->get<unsigned long long>();
  c.store_key = sk->get<std::string>();
  c.key = key->get<std::string>();
  auto obj = j.find("object");
  if (obj != j.end()) {
    if (!obj->is_object()) return absl::DataLossError("object is not a JSON object");
    c.object = std::make_shared<const StoredObject>(std::move(*obj));
  }
  return c;
}

void AppendJsonString(std::string* out, const std::string& s) { *out += Json(s).dump(); }

}  // namespace

std::string ChangeLogPath(const std::string& path) { return path + ".log"; }

absl::Status LoadState(Store* store, const std::string& path) {
  std::string text;
  bool exists = false;
  if (absl::Status st = ReadWholeFile(path, &text, &exists); !st.ok()) return st;
  if (exists) {
    Json dump = Json::parse(text, nullptr, false);
    if (dump.is_discarded()) return absl::InvalidArgumentError("state file " + path + ": not JSON");
    if (absl::Status st = store->Load(dump); !st.ok()) return st;
  }
  const std::string log_path = ChangeLogPath(path);
  std::string log;
  if (absl::Status st = ReadWholeFile(log_path, &log, &exists); !st.ok()) return st;
  if (!exists) return absl::OkStatus();
  size_t pos = 0;
  int line_no = 0;
  while (pos < log.size()) {
    size_t end = log.find('\n', pos);
    const bool last = end == std::string::npos;
    std::string_view line(log.data() + pos, (last ? log.size() : end) - pos);
    pos = last ? log.size() : end + 1;
    ++line_no;
    if (line.empty()) continue;
    absl::StatusOr<StoreChange> change = ParseChange(line);
    if (!change.ok()) {
      // An unterminated last line is an append the emulator died in: drop it.
      if (last) break;
      return absl::DataLossError(log_path + ":" + std::to_string(line_no) + ": " +
                                 std::string(change.status().message()));
    }
    if (absl::Status st = store->Restore(*change); !st.ok()) {
      return absl::DataLossError(log_path + ":" + std::to_string(line_no) + ": " +
                                 std::string(st.message()));
    }
  }
  return absl::OkStatus();
}

StateWriter::StateWriter(Store* store, std::string path, StateWriterOptions options)
    : store_(store), path_(std::move(path)), options_(options) {}

StateWriter::~StateWriter() { (void)Stop(); }

absl::Status StateWriter::Start() {
  if (started_) return absl::OkStatus();
  started_ = true;
  store_->RecordChanges();
  {
    std::lock_guard io(io_mu_);
    std::error_code ec;
    if (!std::filesystem::exists(path_, ec)) {
      if (absl::Status st = CompactLocked(); !st.ok()) return st;
    } else {
      snapshot_bytes_ = std::filesystem::file_size(path_, ec);
      size_t log_size = std::filesystem::file_size(ChangeLogPath(path_), ec);
      log_bytes_ = ec ? 0 : log_size;
    }
  }
  listener_ = store_->AddChangeListener([this] {
    std::lock_guard lock(mu_);
    if (!changed_) {
      changed_ = true;
      cv_.notify_one();
    }
  });
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void StateWriter::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || changed_; });
    if (stop_) return;
    changed_ = false;
    lock.unlock();
    {
      std::lock_guard io(io_mu_);
      Remember(AppendLocked());
    }
    lock.lock();
    // Changes arriving during the next `batch` go in one append.
    if (cv_.wait_for(lock, options_.batch, [this] { return stop_; })) return;
  }
}

absl::Status StateWriter::Flush() {
  std::lock_guard io(io_mu_);
  absl::Status st = AppendLocked();
  Remember(st);
  return st;
}

absl::Status StateWriter::Compact() {
  std::lock_guard io(io_mu_);
  absl::Status st = CompactLocked();
  Remember(st);
  return st;
}

absl::Status StateWriter::Stop() {
  if (!started_) return absl::OkStatus();
  started_ = false;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (listener_ >= 0) {
    store_->RemoveChangeListener(listener_);
    listener_ = -1;
  }
  std::lock_guard io(io_mu_);
  // The snapshot covers everything, pending changes included: the log can go.
  Remember(CompactLocked());
  if (log_) {
    std::fclose(log_);
    log_ = nullptr;
  }
  if (first_error_.ok()) std::remove(ChangeLogPath(path_).c_str());
  return first_error_;
}

void StateWriter::Remember(const absl::Status& status) {
  if (status.ok()) return;
  std::cerr << "driftless-kube-emulator: state file: " << status.message() << std::endl;
  if (first_error_.ok()) first_error_ = status;
}

absl::Status StateWriter::AppendLocked() {
  std::vector<StoreChange> changes = store_->TakeChanges();
  if (changes.empty()) return absl::OkStatus();
  // Only the last change of an object matters on replay; it also carries the highest
  // resourceVersion and uid counter of the batch when it is the batch's last.
  std::unordered_map<std::string, size_t> last;
  for (size_t i = 0; i < changes.size(); ++i) {
    last[changes[i].store_key + "|" + changes[i].key] = i;
  }
  std::string buf;
  for (size_t i = 0; i < changes.size(); ++i) {
    const StoreChange& c = changes[i];
    if (last[c.store_key + "|" + c.key] != i) continue;
    buf += "{\"rv\":" + std::to_string(c.rv) + ",\"uid\":" + std::to_string(c.uid_counter) +
           ",\"storeKey\":";
    AppendJsonString(&buf, c.store_key);
    buf += ",\"key\":";
    AppendJsonString(&buf, c.key);
    if (c.object) {
      buf += ",\"object\":";
      buf += c.object->Text();
    }
    buf += "}\n";
  }
  const std::string log_path = ChangeLogPath(path_);
  if (!log_) {
    log_ = std::fopen(log_path.c_str(), "ab");
    if (!log_) return IoError("cannot open", log_path);
  }
  if (std::fwrite(buf.data(), 1, buf.size(), log_) != buf.size() || std::fflush(log_) != 0) {
    return IoError("cannot append to", log_path);
  }
  log_bytes_ += buf.size();
  const double limit = std::max(static_cast<double>(options_.compact_min_bytes),
                                options_.compact_ratio * static_cast<double>(snapshot_bytes_));
  if (static_cast<double>(log_bytes_) > limit) return CompactLocked();
  return absl::OkStatus();
}

absl::Status StateWriter::CompactLocked() {
  // The snapshot holds every change recorded so far; they are dropped from the store's queue.
  StoreSnapshot snap = store_->TakeSnapshot();
  const std::string tmp = path_ + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return IoError("cannot write", tmp);
  std::string buf = "{\"objects\":[";
  size_t written = 0;
  bool ok = true;
  auto drain = [&](bool force) {
    if (!force && buf.size() < (1 << 20)) return;
    ok = ok && std::fwrite(buf.data(), 1, buf.size(), f) == buf.size();
    written += buf.size();
    buf.clear();
  };
  for (size_t i = 0; i < snap.objects.size(); ++i) {
    if (i) buf += ',';
    buf += "{\"object\":";
    buf += snap.objects[i].second->Text();
    buf += ",\"storeKey\":";
    AppendJsonString(&buf, snap.objects[i].first);
    buf += '}';
    drain(false);
  }
  buf += "],\"resourceVersion\":" + std::to_string(snap.rv) +
         ",\"uidCounter\":" + std::to_string(snap.uid_counter) + "}";
  drain(true);
  ok = std::fflush(f) == 0 && ok;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) return IoError("cannot write", tmp);
  if (std::rename(tmp.c_str(), path_.c_str()) != 0) return IoError("cannot rename to", path_);
  // Entries left in the log after a crash here are at or below snap.rv: skipped on load.
  const std::string log_path = ChangeLogPath(path_);
  if (log_) std::fclose(log_);
  log_ = std::fopen(log_path.c_str(), "wb");
  if (!log_) return IoError("cannot truncate", log_path);
  log_bytes_ = 0;
  snapshot_bytes_ = written;
  ++compactions_;
  return absl::OkStatus();
}

}  // namespace driftless::kube_emulator
