// GoogleTest matchers for absl::Status / absl::StatusOr (Debian's abseil has none).
//
//   EXPECT_THAT(Parse(""), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 3")));
//   ASSERT_OK(status);  ASSERT_OK_AND_ASSIGN(auto v, MakeValue());
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status/status.h"

namespace driftless::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER_P(StatusIs, code, "has status code " + ::testing::PrintToString(code)) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s.ToString();
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher, "") {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s.ToString();
  return s.code() == code && ::testing::Matches(message_matcher)(std::string(s.message()));
}

MATCHER(IsOk, "is ok") {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s.ToString();
  return s.ok();
}

}  // namespace driftless::testing

#define ASSERT_OK(expr) ASSERT_THAT((expr), ::driftless::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::driftless::testing::IsOk())
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(DL_STATUS_CONCAT_(dl_test_statusor_, __LINE__), lhs, rexpr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                               \
  ASSERT_TRUE(statusor.ok()) << statusor.status();       \
  lhs = std::move(statusor).value()
