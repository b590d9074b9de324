#include "services/renderer/file_tree.h"

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

namespace driftless::renderer {
namespace {

namespace fs = std::filesystem;
using ::driftless::testing::StatusIs;
using ::testing::HasSubstr;

class FileTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("driftless-ft-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "repo/app/sub");
    Write("repo/app/a.yaml", "a: 1\n");
    Write("repo/app/sub/b.yml", "b: 2\n");
    Write("repo/app/readme.md", "x");
    Write("outside.yaml", "secret: 1\n");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& text) { std::ofstream(dir_ / rel) << text; }
  fs::path dir_;
};

TEST_F(FileTreeTest, ReadsManifestFilesWithRelativePaths) {
  fs::create_symlink("a.yaml", dir_ / "repo/app/link.yaml");
  ASSERT_OK_AND_ASSIGN(auto files, ReadFileTree((dir_ / "repo").string()));
  std::vector<std::string> paths;
  for (const auto& f : files) paths.push_back(f.path);
  std::sort(paths.begin(), paths.end());
  EXPECT_THAT(paths, ::testing::ElementsAre("app/a.yaml", "app/link.yaml", "app/sub/b.yml"));
}

TEST_F(FileTreeTest, RefusesSymlinkOutOfTheRoot) {
  fs::create_symlink(dir_ / "outside.yaml", dir_ / "repo/app/evil.yaml");
  EXPECT_THAT(ReadFileTree((dir_ / "repo").string()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("symlink app/evil.yaml points outside")));
}

TEST_F(FileTreeTest, LimitsAndMissingRoot) {
  EXPECT_THAT(ReadFileTree((dir_ / "repo").string(), {.max_bytes = 3}),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(ReadFileTree((dir_ / "nope").string()), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace driftless::renderer
