#include "common/merge/internal/field_set.h"

#include <utility>

namespace driftless::merge::internal {

using Json = nlohmann::json;

bool FieldSet::Empty() const {
  if (member) return false;
  for (const auto& [k, c] : children) {
    if (!c.Empty()) return false;
  }
  return true;
}

FieldSet& FieldSet::Child(std::string_view key) {
  auto it = children.find(key);
  if (it != children.end()) return it->second;
  return children.emplace(std::string(key), FieldSet{}).first->second;
}

void FieldSet::Insert(const std::vector<std::string>& keys) {
  FieldSet* node = this;
  for (const auto& k : keys) node = &node->Child(k);
  node->member = true;
}

bool FieldSet::Has(const std::vector<std::string>& keys) const {
  const FieldSet* node = this;
  for (const auto& k : keys) {
    auto it = node->children.find(k);
    if (it == node->children.end()) return false;
    node = &it->second;
  }
  return node->member;
}

void FieldSet::UnionWith(const FieldSet& other) {
  member = member || other.member;
  for (const auto& [k, c] : other.children) Child(k).UnionWith(c);
}

FieldSet FieldSet::Difference(const FieldSet& other) const {
  FieldSet out;
  out.member = member && !other.member;
  for (const auto& [k, c] : children) {
    auto it = other.children.find(k);
    FieldSet sub = it == other.children.end() ? c : c.Difference(it->second);
    if (!sub.Empty()) out.children.emplace(k, std::move(sub));
  }
  return out;
}

FieldSet FieldSet::Intersection(const FieldSet& other) const {
  FieldSet out;
  out.member = member && other.member;
  for (const auto& [k, c] : children) {
    auto it = other.children.find(k);
    if (it == other.children.end()) continue;
    FieldSet sub = c.Intersection(it->second);
    if (!sub.Empty()) out.children.emplace(k, std::move(sub));
  }
  return out;
}

FieldSet FieldSet::RecursiveDifference(const FieldSet& other) const {
  FieldSet out;
  out.member = member && !other.member;
  for (const auto& [k, c] : children) {
    auto it = other.children.find(k);
    if (it == other.children.end()) {
      if (!c.Empty()) out.children.emplace(k, c);
      continue;
    }
    if (it->second.member) continue;
    FieldSet sub = c.RecursiveDifference(it->second);
    if (!sub.Empty()) out.children.emplace(k, std::move(sub));
  }
  return out;
}

namespace {
void EnsureInto(const FieldSet& in, FieldSet& out, bool named) {
  out.member = in.member || (named && !in.children.empty());
  for (const auto& [k, c] : in.children) {
    EnsureInto(c, out.children[k], k.size() >= 2 && k[0] == 'f' && k[1] == ':');
  }
}
}  // namespace

FieldSet FieldSet::EnsureNamedFieldsAreMembers() const {
  FieldSet out;
  EnsureInto(*this, out, false);
  out.member = member;
  return out;
}

void FieldSet::Compact() {
  for (auto it = children.begin(); it != children.end();) {
    it->second.Compact();
    if (!it->second.member && it->second.children.empty()) {
      it = children.erase(it);
    } else {
      ++it;
    }
  }
}

bool FieldSet::operator==(const FieldSet& other) const {
  return member == other.member && children == other.children;
}

namespace {
// The message names the path; it is built only on the error path (decoding is hot).
absl::Status Decode(const Json& j, FieldSet& out) {
  if (!j.is_object()) return absl::InvalidArgumentError(": expected an object");
  if (j.empty()) {
    out.member = true;
    return absl::OkStatus();
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == ".") {
      out.member = true;
      continue;
    }
    if (k.size() < 2 || k[1] != ':' || (k[0] != 'f' && k[0] != 'k' && k[0] != 'v' && k[0] != 'i')) {
      return absl::InvalidArgumentError(": bad path element \"" + k + "\"");
    }
    absl::Status s = Decode(it.value(), out.Child(k));
    if (!s.ok()) {
      return absl::InvalidArgumentError(PathElementString(k) + std::string(s.message()));
    }
  }
  return absl::OkStatus();
}

Json Encode(const FieldSet& s) {
  Json out = Json::object();
  if (s.member && !s.children.empty()) out["."] = Json::object();
  for (const auto& [k, c] : s.children) {
    if (c.Empty()) continue;
    out[k] = Encode(c);
  }
  return out;
}

void Collect(const FieldSet& s, std::string& prefix, std::vector<std::string>& out) {
  if (s.member) out.push_back(prefix);
  for (const auto& [k, c] : s.children) {
    size_t n = prefix.size();
    prefix += PathElementString(k);
    Collect(c, prefix, out);
    prefix.resize(n);
  }
}
}  // namespace

absl::StatusOr<FieldSet> FieldSet::FromFieldsV1(const Json& fields) {
  FieldSet out;
  if (fields.is_null()) return out;
  if (fields.is_object() && fields.empty()) return out;  // an empty set, not the root
  absl::Status s = Decode(fields, out);
  if (!s.ok()) return absl::InvalidArgumentError("fieldsV1" + std::string(s.message()));
  out.member = false;  // the root itself is never a field
  return out;
}

Json FieldSet::ToFieldsV1() const { return Encode(*this); }

std::vector<std::string> FieldSet::MemberPaths() const {
  std::vector<std::string> out;
  std::string prefix;
  for (const auto& [k, c] : children) {
    prefix = PathElementString(k);
    Collect(c, prefix, out);
  }
  return out;
}

std::string PathElementString(std::string_view key) {
  if (key.size() < 2) return std::string(key);
  std::string_view rest = key.substr(2);
  // Built with append: GCC 12 -O3 warns (-Wrestrict) on `"x" + std::string(...)`.
  std::string out;
  out.reserve(key.size() + 4);
  switch (key[0]) {
    case 'f':
      out.push_back('.');
      out.append(rest);
      return out;
    case 'v':
      out.append("[=").append(rest).push_back(']');
      return out;
    case 'i':
      out.push_back('[');
      out.append(rest).push_back(']');
      return out;
    case 'k': {
      Json keys = Json::parse(rest, nullptr, /*allow_exceptions=*/false);
      out.push_back('[');
      if (!keys.is_object()) {
        out.append(rest).push_back(']');
        return out;
      }
      bool first = true;
      for (const auto& [k, v] : keys.items()) {
        if (!first) out.push_back(',');
        first = false;
        out.append(k).push_back('=');
        out.append(v.dump());
      }
      out.push_back(']');
      return out;
    }
    default:
      return std::string(key);
  }
}

}  // namespace driftless::merge::internal
