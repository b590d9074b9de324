// The one object model for Kubernetes manifests in driftless.
//
// YAML (or JSON) is parsed once into a JSON-like tree (nlohmann::json, keys kept sorted), the
// same tree every stage uses; CanonicalJson/Digest give one stable serialization for digests
// and diffs, independent of the key order and formatting of the input.
//
//   DL_ASSIGN_OR_RETURN(auto docs, manifest::ParseYamlDocuments(text, "apps/web/deploy.yaml"));
//   for (const manifest::Document& d : docs) { ... d.value["kind"] ... d.location.line ... }
//   std::string yaml = manifest::ToYaml(docs[0].value);
//   std::string id = manifest::Digest(docs[0].value);   // "sha256:9f86d0..."
//
// Scalars resolve the way kubectl (sigs.k8s.io/yaml, YAML 1.1) resolves them: unquoted
// true/false/yes/no/on/off are booleans, 0x1F and 0777 are integers, ~ and null are null,
// anything quoted is a string. Anchors, aliases and `<<` merge keys are supported. Duplicate
// keys, non-scalar keys, NaN/Inf and tabs used for indentation are errors.
//
// Thread-safety: all functions are pure and may be called concurrently.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status/status.h"

namespace driftless::manifest {

using Json = nlohmann::json;

// Where a value came from. `document` is 0-based within its file; `line` is 1-based
// (0 when unknown).
struct SourceLocation {
  std::string file;
  int document = 0;
  int line = 0;

  // "apps/web/deploy.yaml (document 2, line 14)".
  std::string ToString() const;
};

struct Document {
  Json value;  // null for an empty document (`---` followed by nothing)
  SourceLocation location;
};

// Parses a multi-document YAML stream. Empty documents are kept (as null) so document
// indexes match what the user sees. On error returns kInvalidArgument whose message names
// `file`, the document index and the line: "deploy.yaml: document 1, line 7: ...".
absl::StatusOr<std::vector<Document>> ParseYamlDocuments(std::string_view text,
                                                         std::string_view file);

// Parses a stream that must hold exactly one non-empty document.
absl::StatusOr<Json> ParseYaml(std::string_view text, std::string_view file);

// Parses strict JSON (RFC 8259). Errors are kInvalidArgument naming `file` and the byte offset.
absl::StatusOr<Json> ParseJson(std::string_view text, std::string_view file);

// Block-style YAML for one value, ending in a newline. Strings that would resolve to
// another type (e.g. "true", "1.0", "null") are quoted, so ParseYaml(ToYaml(v)) == v.
std::string ToYaml(const Json& value);

// Several values as one multi-document stream separated by "---\n".
std::string ToYamlStream(const std::vector<Json>& values);

// Compact JSON with sorted keys: the canonical serialization used for digests and
// equality. Stable across key order and input formatting.
std::string CanonicalJson(const Json& value);

// "sha256:<64 hex>" of CanonicalJson(value).
std::string Digest(const Json& value);

// Lower-case hex sha256 of raw bytes.
std::string Sha256Hex(std::string_view bytes);

// Lower-case hex HMAC-SHA256 of `data` keyed by `key` (webhook signatures, both ways).
std::string HmacSha256Hex(std::string_view key, std::string_view data);

}  // namespace driftless::manifest
