// `${VAR}` substitution in rendered manifests (Flux postBuild.substitute semantics).
//
//   ${NAME}            the value; unset: "" (as in Flux), or an error in strict mode
//   ${NAME:=default}   the value, or `default` when NAME is unset or empty (also ${NAME:-default})
//   ${NAME=default}    the value, or `default` when NAME is unset (also ${NAME-default})
//   $${NAME}           the literal text ${NAME}
//   $NAME              left alone (scripts in ConfigMaps keep working)
// NAME is [_a-zA-Z][_a-zA-Z0-9]*; `${` followed by anything else is left alone.
//
// Objects are substituted on their YAML text and parsed again, so a value like "${REPLICAS}"
// becomes the number 3 when REPLICAS=3 (as in Flux). Objects annotated
// `driftless.dev/substitute: disabled` (or Flux's `kustomize.toolkit.fluxcd.io/substitute:
// disabled`) are left untouched.
// Pure and thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/manifest/manifest.h"
#include "common/status/status.h"

namespace driftless::renderer {

using Variables = std::map<std::string, std::string, std::less<>>;

// `strict`: an unset variable with no default is an error instead of "" (spec.source.
// substituteStrict; Flux's StrictPostBuildSubstitutions).
// Errors: kInvalidArgument "variable ${NAME} is not set ..." (strict only), or an unterminated
// "${".
absl::StatusOr<std::string> SubstituteText(std::string_view text, const Variables& vars,
                                           bool strict = false);

// Substitutes one object (see above). Errors name the object: "Deployment web: variable ...".
absl::StatusOr<manifest::Json> SubstituteObject(const manifest::Json& object, const Variables& vars,
                                                bool strict = false);

}  // namespace driftless::renderer
