// The driftless resources users write (apiVersion driftless.dev/v1alpha1): Application,
// Project, Cluster, Repository, NotificationProvider, Alert, Receiver.
//
// Parsing and validation are pure: a structural schema (schema.yaml, compiled into the
// library) says which fields exist, their types and formats, which are required, which are
// mutually exclusive and which are credentials. Unknown fields are errors that name their
// path, never silently ignored.
//
//   DL_ASSIGN_OR_RETURN(auto rs, resources::ParseResources(text, "apps.yaml"));
//   // error: "apps.yaml (document 1, line 3): Application guestbook:
//   //         spec.source.directoy: unknown field (did you mean \"directory\"?)"
//   manifest::Json safe = resources::Redact(rs[0].object);   // credentials -> "<redacted>"
//
// Thread-safety: all functions are thread-safe.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/manifest/manifest.h"
#include "common/status/status.h"

namespace driftless::resources {

inline constexpr std::string_view kApiVersion = "driftless.dev/v1alpha1";
inline constexpr std::string_view kRedacted = "<redacted>";

// The kinds this API version defines, in the order `apply -f` registers them
// (credentials and targets before what refers to them).
const std::vector<std::string>& Kinds();

struct Resource {
  std::string kind;
  std::string name;
  manifest::Json object;  // the whole object as written (after secret files are read)
  manifest::SourceLocation location;
};

// Validates one object against the schema of its kind. Errors: kInvalidArgument whose message
// starts with "<Kind> <name>: " and lists every problem (up to 20) as "<field path>: <what>".
absl::Status Validate(const manifest::Json& object);

// Parses a multi-document YAML stream of resources (empty documents and `kind: List` wrappers
// are allowed) and validates each. Errors name the file, document and line of the resource.
absl::StatusOr<std::vector<Resource>> ParseResources(std::string_view text, std::string_view file);

// Reads the file behind each `<secret field>File: path` (e.g. `passwordFile`) through
// `read_file` and moves it into the secret field. Relative paths are resolved by the caller's
// reader. Errors: the reader's error, annotated with the resource and field.
using FileReader = std::function<absl::StatusOr<std::string>(const std::string& path)>;
absl::Status ResolveSecretFiles(manifest::Json& object, const FileReader& read_file);

// A copy of `object` with every credential field replaced by "<redacted>".
manifest::Json Redact(const manifest::Json& object);

// The JSON pointers of credential fields present in `object` ("/spec/auth/token").
std::vector<std::string> SecretPointers(const manifest::Json& object);

// The structural schema of a kind (OpenAPI v3 subset), e.g. for docs or CRD generation.
// Returns null for an unknown kind.
const manifest::Json& SchemaFor(std::string_view kind);

}  // namespace driftless::resources
