#include "tools/kube-emulator/protobuf_decode.h"

#include <string>

#include "absl/strings/escaping.h"

namespace driftless::kube_emulator {
namespace {

using Json = nlohmann::json;

// One protobuf field: number, wire type, and the varint or length-delimited payload.
struct Field {
  int number = 0;
  int wire = 0;
  unsigned long long varint = 0;
  std::string_view bytes;
};

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool Done() const { return pos_ >= data_.size(); }
  bool Next(Field* f) {
    unsigned long long key;
    if (!Varint(&key)) return false;
    f->number = static_cast<int>(key >> 3);
    f->wire = static_cast<int>(key & 7);
    switch (f->wire) {
      case 0:
        return Varint(&f->varint);
      case 1:
        pos_ += 8;
        return pos_ <= data_.size();
      case 5:
        pos_ += 4;
        return pos_ <= data_.size();
      case 2: {
        unsigned long long len;
        if (!Varint(&len) || pos_ + len > data_.size()) return false;
        f->bytes = data_.substr(pos_, len);
        pos_ += len;
        return true;
      }
      default:
        return false;
    }
  }

 private:
  bool Varint(unsigned long long* out) {
    *out = 0;
    for (int shift = 0; shift < 64 && pos_ < data_.size(); shift += 7) {
      unsigned char b = static_cast<unsigned char>(data_[pos_++]);
      *out |= static_cast<unsigned long long>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  std::string_view data_;
  size_t pos_ = 0;
};

bool MapEntry(std::string_view entry, bool base64, Json* map) {
  Reader r(entry);
  Field f;
  std::string key, value;
  while (!r.Done()) {
    if (!r.Next(&f)) return false;
    if (f.number == 1 && f.wire == 2) key = std::string(f.bytes);
    if (f.number == 2 && f.wire == 2) value = std::string(f.bytes);
  }
  (*map)[key] = base64 ? absl::Base64Escape(value) : value;
  return true;
}

bool ObjectMeta(std::string_view data, Json* meta) {
  Reader r(data);
  Field f;
  while (!r.Done()) {
    if (!r.Next(&f)) return false;
    if (f.wire != 2) continue;
    switch (f.number) {
      case 1:
        (*meta)["name"] = std::string(f.bytes);
        break;
      case 2:
        (*meta)["generateName"] = std::string(f.bytes);
        break;
      case 3:
        (*meta)["namespace"] = std::string(f.bytes);
        break;
      case 11:
        if (!MapEntry(f.bytes, false, &(*meta)["labels"])) return false;
        break;
      case 12:
        if (!MapEntry(f.bytes, false, &(*meta)["annotations"])) return false;
        break;
      default:
        break;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<Json> DecodeKubernetesProtobuf(std::string_view body) {
  if (body.size() < 4 || body.substr(0, 4) != std::string_view("k8s\0", 4)) {
    return absl::InvalidArgumentError("protobuf body lacks the k8s magic prefix");
  }
  Reader outer(body.substr(4));
  Field f;
  std::string api_version, kind;
  std::string_view raw;
  while (!outer.Done()) {
    if (!outer.Next(&f)) return absl::InvalidArgumentError("malformed protobuf envelope");
    if (f.number == 1 && f.wire == 2) {
      Reader tm(f.bytes);
      Field t;
      while (!tm.Done()) {
        if (!tm.Next(&t)) return absl::InvalidArgumentError("malformed protobuf TypeMeta");
        if (t.number == 1) api_version = std::string(t.bytes);
        if (t.number == 2) kind = std::string(t.bytes);
      }
    } else if (f.number == 2 && f.wire == 2) {
      raw = f.bytes;
    }
  }
  if (kind != "Namespace" && kind != "ConfigMap" && kind != "Secret") {
    return absl::UnimplementedError(
        "protobuf bodies are supported for Namespace, ConfigMap and "
        "Secret only; send JSON (" +
        kind + ")");
  }
  Json obj = {{"apiVersion", api_version}, {"kind", kind}, {"metadata", Json::object()}};
  Reader r(raw);
  while (!r.Done()) {
    if (!r.Next(&f)) return absl::InvalidArgumentError("malformed protobuf " + kind);
    if (f.number == 1 && f.wire == 2) {
      if (!ObjectMeta(f.bytes, &obj["metadata"])) {
        return absl::InvalidArgumentError("malformed protobuf ObjectMeta");
      }
      continue;
    }
    bool ok = true;
    if (kind == "ConfigMap") {
      if (f.number == 2 && f.wire == 2) ok = MapEntry(f.bytes, false, &obj["data"]);
      if (f.number == 3 && f.wire == 2) ok = MapEntry(f.bytes, true, &obj["binaryData"]);
      if (f.number == 4 && f.wire == 0) obj["immutable"] = f.varint != 0;
    } else if (kind == "Secret") {
      if (f.number == 2 && f.wire == 2) ok = MapEntry(f.bytes, true, &obj["data"]);
      if (f.number == 3 && f.wire == 2) obj["type"] = std::string(f.bytes);
      if (f.number == 4 && f.wire == 2) ok = MapEntry(f.bytes, false, &obj["stringData"]);
      if (f.number == 5 && f.wire == 0) obj["immutable"] = f.varint != 0;
    }
    if (!ok) return absl::InvalidArgumentError("malformed protobuf map entry");
  }
  return obj;
}

}  // namespace driftless::kube_emulator
