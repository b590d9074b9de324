// common/git uses the shared string helpers (common/strings/str.h).
#pragma once

#include "common/strings/str.h"

namespace driftless::git::internal {
using strings::Cat;
using strings::Join;
using strings::Split;
}  // namespace driftless::git::internal
