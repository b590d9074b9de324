// YAML -> Json, built straight from yaml-cpp parser events (no intermediate YAML::Node tree,
// which roughly halves the cost of parsing compared with YAML::LoadAll + conversion).
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <istream>
#include <limits>
#include <streambuf>
#include <unordered_map>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include "common/manifest/internal/scalar.h"
#include "common/manifest/manifest.h"

namespace driftless::manifest {
namespace internal {
namespace {

bool OneOf(std::string_view s, std::initializer_list<std::string_view> options) {
  for (std::string_view o : options) {
    if (s == o) return true;
  }
  return false;
}

bool IsDigitIn(char c, int base) {
  if (base == 2) return c == '0' || c == '1';
  if (base == 8) return c >= '0' && c <= '7';
  if (base == 10) return c >= '0' && c <= '9';
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Go's strconv.ParseInt(s, 0, 64) after removing underscores.
std::optional<nlohmann::json> ParseGoInt(std::string_view in) {
  std::string s;
  s.reserve(in.size());
  for (char c : in) {
    if (c != '_') s.push_back(c);
  }
  if (s.empty()) return std::nullopt;
  size_t i = 0;
  bool negative = false;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    i = 1;
  }
  int base = 10;
  if (s.size() - i >= 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
    base = 16;
    i += 2;
  } else if (s.size() - i >= 2 && s[i] == '0' && (s[i + 1] == 'b' || s[i + 1] == 'B')) {
    base = 2;
    i += 2;
  } else if (s.size() - i >= 2 && s[i] == '0' && (s[i + 1] == 'o' || s[i + 1] == 'O')) {
    base = 8;
    i += 2;
  } else if (s.size() - i >= 2 && s[i] == '0') {
    base = 8;
    i += 1;
  }
  if (i >= s.size()) return std::nullopt;
  for (size_t j = i; j < s.size(); ++j) {
    if (!IsDigitIn(s[j], base)) return std::nullopt;
  }
  errno = 0;
  const char* begin = s.c_str() + i;
  char* end = nullptr;
  unsigned long long magnitude = std::strtoull(begin, &end, base);
  if (errno == ERANGE || end != s.c_str() + s.size()) return std::nullopt;
  if (negative) {
    if (magnitude > static_cast<unsigned long long>(std::numeric_limits<int64_t>::max()) + 1) {
      return std::nullopt;
    }
    return nlohmann::json(static_cast<int64_t>(0ULL - magnitude));
  }
  if (magnitude > static_cast<unsigned long long>(std::numeric_limits<int64_t>::max())) {
    return nlohmann::json(static_cast<uint64_t>(magnitude));
  }
  return nlohmann::json(static_cast<int64_t>(magnitude));
}

// go-yaml v2 float pattern: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
bool LooksLikeFloat(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  size_t digits = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
    if (digits == 0) return false;
  } else {
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
    if (digits == 0) return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

nlohmann::json FloatValue(double d) {
  if (std::trunc(d) == d && std::fabs(d) < 9.2e18) return nlohmann::json(static_cast<int64_t>(d));
  return nlohmann::json(d);
}

}  // namespace

Resolved ResolvePlain(std::string_view s) {
  Resolved r;
  if (s.empty()) {
    r.kind = PlainKind::kNull;
    return r;
  }
  const char c = s[0];
  // Fast path: most scalars (names, images, labels) start with a letter that can begin
  // neither a number nor one of the reserved words.
  const bool maybe_special = (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' ||
                             c == '~' || c == 'y' || c == 'Y' || c == 'n' || c == 'N' || c == 't' ||
                             c == 'T' || c == 'f' || c == 'F' || c == 'o' || c == 'O';
  if (!maybe_special) return r;
  if (OneOf(s, {"~", "null", "Null", "NULL"})) {
    r.kind = PlainKind::kNull;
    return r;
  }
  if (OneOf(s, {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})) {
    r.kind = PlainKind::kBool;
    r.value = true;
    return r;
  }
  if (OneOf(s, {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"})) {
    r.kind = PlainKind::kBool;
    r.value = false;
    return r;
  }
  if (OneOf(s, {".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
                "-.Inf", "-.INF"})) {
    r.kind = PlainKind::kSpecialFloat;
    return r;
  }
  if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.')) return r;
  if (auto i = ParseGoInt(s)) {
    r.kind = PlainKind::kInt;
    r.value = std::move(*i);
    return r;
  }
  std::string no_underscores;
  for (char ch : s) {
    if (ch != '_') no_underscores.push_back(ch);
  }
  if (LooksLikeFloat(no_underscores)) {
    char* end = nullptr;
    double d = std::strtod(no_underscores.c_str(), &end);
    if (end == no_underscores.c_str() + no_underscores.size() && std::isfinite(d)) {
      r.kind = PlainKind::kFloat;
      r.value = FloatValue(d);
      return r;
    }
  }
  return r;
}

}  // namespace internal

namespace {

using internal::PlainKind;

constexpr std::string_view kTagStr = "tag:yaml.org,2002:str";
constexpr std::string_view kTagInt = "tag:yaml.org,2002:int";
constexpr std::string_view kTagFloat = "tag:yaml.org,2002:float";
constexpr std::string_view kTagBool = "tag:yaml.org,2002:bool";
constexpr std::string_view kTagNull = "tag:yaml.org,2002:null";

// Guards against alias expansion bombs ("billion laughs"): at most this many nodes per
// document after aliases are expanded.
constexpr size_t kMaxNodesPerDocument = 2'000'000;

// A std::streambuf over caller-owned bytes, so parsing does not copy the input.
class ViewBuf : public std::streambuf {
 public:
  explicit ViewBuf(std::string_view s) {
    char* p = const_cast<char*>(s.data());
    setg(p, p, p + s.size());
  }
};

struct ParseError {
  size_t document;
  int line;  // 1-based, 0 if unknown
  std::string message;
};

class JsonBuilder : public YAML::EventHandler {
 public:
  std::vector<Document>* docs = nullptr;
  std::string file;
  std::optional<ParseError> error;

  void OnDocumentStart(const YAML::Mark&) override {
    root_ = Json();
    has_root_ = false;
    root_line_ = 0;
    stack_.clear();
    anchors_.clear();
    nodes_ = 0;
  }

  void OnDocumentEnd() override {
    Document d;
    d.value = std::move(root_);
    d.location.file = file;
    d.location.document = static_cast<int>(docs->size());
    d.location.line = root_line_;
    docs->push_back(std::move(d));
  }

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    Complete(mark, Json(), anchor, /*plain_key_text=*/"null", /*is_merge_key=*/false,
             /*scalar_key=*/true);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (error) return;
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) {
      Fail(mark, "unknown alias");
      return;
    }
    nodes_ += it->second.nodes;
    if (nodes_ > kMaxNodesPerDocument) {
      Fail(mark, "document expands to more than " + std::to_string(kMaxNodesPerDocument) +
                     " nodes through aliases");
      return;
    }
    const Json& v = it->second.value;
    Complete(mark, v, YAML::NullAnchor, ScalarKeyText(v), false, !v.is_structured());
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    if (error) return;
    Json v;
    bool merge_key = false;
    if (tag == "?") {
      internal::Resolved r = internal::ResolvePlain(value);
      switch (r.kind) {
        case PlainKind::kString:
          merge_key = value == "<<";
          v = value;
          break;
        case PlainKind::kSpecialFloat:
          Fail(mark, "\"" + value + "\" (NaN or infinity) cannot be represented in JSON");
          return;
        default:
          v = std::move(r.value);
      }
    } else if (tag == "!" || tag == kTagStr) {
      v = value;
    } else if (tag == kTagInt || tag == kTagFloat || tag == kTagBool || tag == kTagNull) {
      internal::Resolved r = internal::ResolvePlain(value);
      const bool ok =
          (tag == kTagInt && r.kind == PlainKind::kInt) ||
          (tag == kTagFloat && (r.kind == PlainKind::kFloat || r.kind == PlainKind::kInt)) ||
          (tag == kTagBool && r.kind == PlainKind::kBool) ||
          (tag == kTagNull && r.kind == PlainKind::kNull);
      if (!ok) {
        Fail(mark, "cannot decode \"" + value + "\" as " + std::string(tag.substr(18)));
        return;
      }
      v = std::move(r.value);
    } else {
      // !!binary, !!timestamp and application tags keep their text.
      v = value;
    }
    std::string key_text = v.is_string() ? value : ScalarKeyText(v);
    Complete(mark, std::move(v), anchor, key_text, merge_key, true);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(mark, Json::array(), anchor);
  }
  void OnSequenceEnd() override { Close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(mark, Json::object(), anchor);
  }
  void OnMapEnd() override {
    if (error || stack_.empty()) return;
    Frame& f = stack_.back();
    // Merge keys: explicit keys win; among merged maps the first listed wins.
    for (const Json& src : f.merges) {
      for (auto it = src.begin(); it != src.end(); ++it) {
        if (!f.value.contains(it.key())) f.value[it.key()] = it.value();
      }
    }
    Close();
  }

 private:
  struct Frame {
    Json value;
    YAML::anchor_t anchor = YAML::NullAnchor;
    size_t nodes_at_start = 0;
    int line = 0;
    // Maps only.
    bool have_key = false;
    bool key_is_merge = false;
    std::string key;
    std::vector<Json> merges;
  };
  struct Anchored {
    Json value;
    size_t nodes = 0;
  };

  static std::string ScalarKeyText(const Json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_null()) return "null";
    return v.dump();
  }

  void Fail(const YAML::Mark& mark, std::string message) {
    if (!error) {
      error = ParseError{docs->size(), mark.line >= 0 ? mark.line + 1 : 0, std::move(message)};
    }
  }

  void Open(const YAML::Mark& mark, Json value, YAML::anchor_t anchor) {
    if (error) return;
    ++nodes_;
    if (!stack_.empty() && stack_.back().value.is_object() && !stack_.back().have_key) {
      Fail(mark, "mapping keys must be scalars");
      return;
    }
    Frame f;
    f.value = std::move(value);
    f.anchor = anchor;
    f.nodes_at_start = nodes_;
    f.line = mark.line + 1;
    stack_.push_back(std::move(f));
  }

  void Close() {
    if (error || stack_.empty()) return;
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    YAML::Mark mark;
    mark.line = f.line - 1;
    if (f.anchor != YAML::NullAnchor) {
      anchors_[f.anchor] = Anchored{f.value, nodes_ - f.nodes_at_start + 1};
    }
    Complete(mark, std::move(f.value), YAML::NullAnchor, "", false, false);
  }

  // Places a finished value into its parent (or as the document root).
  void Complete(const YAML::Mark& mark, Json v, YAML::anchor_t anchor, const std::string& key_text,
                bool is_merge_key, bool scalar_key) {
    if (error) return;
    if (anchor != YAML::NullAnchor) anchors_[anchor] = Anchored{v, 1};
    if (stack_.empty()) {
      root_ = std::move(v);
      has_root_ = true;
      root_line_ = mark.line + 1;
      return;
    }
    Frame& parent = stack_.back();
    if (parent.value.is_array()) {
      ++nodes_;
      parent.value.push_back(std::move(v));
      return;
    }
    if (!parent.have_key) {
      if (!scalar_key) {
        Fail(mark, "mapping keys must be scalars");
        return;
      }
      parent.have_key = true;
      parent.key = key_text;
      parent.key_is_merge = is_merge_key;
      return;
    }
    parent.have_key = false;
    ++nodes_;
    if (parent.key_is_merge) {
      if (v.is_object()) {
        parent.merges.push_back(std::move(v));
      } else if (v.is_array() &&
                 std::all_of(v.begin(), v.end(), [](const Json& e) { return e.is_object(); })) {
        for (Json& e : v) parent.merges.push_back(std::move(e));
      } else {
        Fail(mark, "merge key \"<<\" needs a mapping or a list of mappings");
      }
      return;
    }
    auto [it, inserted] = parent.value.emplace(parent.key, std::move(v));
    if (!inserted) {
      Fail(mark, "duplicate key \"" + parent.key + "\" in the mapping that starts at line " +
                     std::to_string(parent.line));
    }
  }

  Json root_;
  bool has_root_ = false;
  int root_line_ = 0;
  std::vector<Frame> stack_;
  std::unordered_map<YAML::anchor_t, Anchored> anchors_;
  size_t nodes_ = 0;
};

std::string ErrorPrefix(std::string_view file, size_t document, int line) {
  std::string out = file.empty() ? "<input>" : std::string(file);
  out += ": document " + std::to_string(document);
  if (line > 0) out += ", line " + std::to_string(line);
  return out + ": ";
}

}  // namespace

absl::StatusOr<std::vector<Document>> ParseYamlDocuments(std::string_view text,
                                                         std::string_view file) {
  std::vector<Document> docs;
  JsonBuilder builder;
  builder.docs = &docs;
  builder.file = std::string(file);
  ViewBuf buf(text);
  std::istream in(&buf);
  try {
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(builder)) {
      if (builder.error) break;
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        ErrorPrefix(file, docs.size(), e.mark.is_null() ? 0 : e.mark.line + 1) + e.msg);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(ErrorPrefix(file, docs.size(), 0) + e.what());
  }
  if (builder.error) {
    return absl::InvalidArgumentError(
        ErrorPrefix(file, builder.error->document, builder.error->line) + builder.error->message);
  }
  return docs;
}

absl::StatusOr<Json> ParseYaml(std::string_view text, std::string_view file) {
  DL_ASSIGN_OR_RETURN(std::vector<Document> docs, ParseYamlDocuments(text, file));
  Json* found = nullptr;
  for (Document& d : docs) {
    if (d.value.is_null()) continue;
    if (found != nullptr) {
      return absl::InvalidArgumentError(std::string(file) +
                                        ": expected one YAML document, found several");
    }
    found = &d.value;
  }
  if (found == nullptr) {
    return absl::InvalidArgumentError(std::string(file) + ": no YAML document");
  }
  return std::move(*found);
}

}  // namespace driftless::manifest
