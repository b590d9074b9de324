// common/bus uses the shared string helpers (common/strings/str.h).
#pragma once

#include "common/strings/str.h"

namespace driftless::bus::internal {
using strings::Append;
using strings::Cat;
using strings::Contains;
using strings::ParseInt;
using strings::Split;
}  // namespace driftless::bus::internal
