#include "common/git/url.h"

#include <gtest/gtest.h>

namespace driftless::git {
namespace {

TEST(RedactUrlTest, StripsUserinfo) {
  EXPECT_EQ(RedactUrl("https://user:pass@host/x"), "https://host/x");
  EXPECT_EQ(RedactUrl("https://x-access-token:ghp_abc@github.com/o/r.git"),
            "https://github.com/o/r.git");
  EXPECT_EQ(RedactUrl("https://tok@host:8443/x?y=1"), "https://host:8443/x?y=1");
  EXPECT_EQ(RedactUrl("https://u:p@host"), "https://host");
  EXPECT_EQ(RedactUrl("ssh://git@host:22/o/r"), "ssh://host:22/o/r");
  EXPECT_EQ(RedactUrl("https://host/path/with@sign"), "https://host/path/with@sign");
  EXPECT_EQ(RedactUrl("git@github.com:o/r.git"), "git@github.com:o/r.git");
  EXPECT_EQ(RedactUrl("git:secret@github.com:o/r.git"), "github.com:o/r.git");
  EXPECT_EQ(RedactUrl("file:///tmp/repo"), "file:///tmp/repo");
  EXPECT_EQ(RedactUrl(""), "");
}

TEST(NormalizeUrlTest, SameRepositorySameKey) {
  EXPECT_EQ(NormalizeUrl("HTTPS://Git.Example.com/Team/X/"), "https://git.example.com/Team/X");
  EXPECT_EQ(NormalizeUrl("https://user:pw@git.example.com/Team/X"),
            "https://git.example.com/Team/X");
  EXPECT_EQ(NormalizeUrl("file:///tmp/repo//"), "file:///tmp/repo");
  EXPECT_NE(NormalizeUrl("https://h/a"), NormalizeUrl("https://h/b"));
}

}  // namespace
}  // namespace driftless::git
