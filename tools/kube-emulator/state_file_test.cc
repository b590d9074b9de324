#include "tools/kube-emulator/state_file.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/testing/status_matchers.h"
#include "tools/kube-emulator/api_error.h"

namespace driftless::kube_emulator {
namespace {

using ::driftless::testing::StatusIs;

std::string TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "kube-emu-state-XXXXXX").string();
  char* d = mkdtemp(tmpl.data());
  return d ? std::string(d) : "";
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Json ConfigMap(const std::string& name, const std::string& value) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"labels", {{"app", "x"}}}}},
          {"data", {{"k", value}}}};
}

Json Crd() {
  return Json::parse(R"({"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
    "metadata":{"name":"widgets.example.com"},
    "spec":{"group":"example.com","scope":"Namespaced",
      "names":{"plural":"widgets","singular":"widget","kind":"Widget"},
      "versions":[{"name":"v1","served":true,"storage":true,
        "schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}]}})");
}

class StateFileTest : public ::testing::Test {
 protected:
  // A second store, loaded from the files.
  struct Loaded {
    Registry registry;
    FakeClock clock;
    Store store{&registry, &clock};
  };
  std::unique_ptr<Loaded> Reload(absl::Status* status = nullptr) {
    auto l = std::make_unique<Loaded>();
    absl::Status st = LoadState(&l->store, path_);
    if (status)
      *status = st;
    else
      EXPECT_OK(st);
    return l;
  }

  std::string dir_ = TempDir();
  std::string path_ = dir_ + "/state.json";
  FakeClock clock_;
  Registry registry_;
  Store store_{&registry_, &clock_};
  std::shared_ptr<const ResourceType> cm_ = registry_.Find("", "v1", "configmaps");
};

TEST_F(StateFileTest, ChangesSurviveACrashThroughTheLog) {
  StateWriter writer(&store_, path_, {});
  ASSERT_OK(writer.Start());
  EXPECT_TRUE(std::filesystem::exists(path_)) << "a first snapshot is written at start";
  ASSERT_OK(store_.Create(*cm_, "default", ConfigMap("a", "1"), {}).status());
  ASSERT_OK(store_.Create(*cm_, "default", ConfigMap("b", "1"), {}).status());
  ASSERT_OK(store_.Update(*cm_, "default", "a", ConfigMap("a", "2"), {}).status());
  ASSERT_OK(store_.Delete(*cm_, "default", "b", {}).status());
  ASSERT_OK(writer.Flush());
  // No Stop(): as if the process died here.
  EXPECT_GT(writer.LogBytesForTest(), 0u);
  auto loaded = Reload();
  ASSERT_OK_AND_ASSIGN(Json a, loaded->store.Get(*cm_, "default", "a"));
  EXPECT_EQ(a["data"]["k"], "2");
  EXPECT_EQ(HttpCode(loaded->store.Get(*cm_, "default", "b").status()), 404);
  EXPECT_EQ(loaded->store.ResourceVersion(), store_.ResourceVersion());
  EXPECT_EQ(loaded->store.ObjectCount(), store_.ObjectCount());
  // Indexes are rebuilt: the label selector finds the object.
  ASSERT_OK_AND_ASSIGN(Json l, loaded->store.List(*cm_, "", {.label_selector = "app=x"}));
  EXPECT_EQ(l["items"].size(), 1u);
  // New uids do not repeat old ones.
  ASSERT_OK_AND_ASSIGN(Json c, loaded->store.Create(*cm_, "default", ConfigMap("c", "1"), {}));
  EXPECT_NE(c["metadata"]["uid"], a["metadata"]["uid"]);
}

TEST_F(StateFileTest, StopLeavesOneSnapshot) {
  StateWriter writer(&store_, path_, {});
  ASSERT_OK(writer.Start());
  ASSERT_OK(store_.Create(*cm_, "default", ConfigMap("a", "1"), {}).status());
  ASSERT_OK(writer.Stop());
  EXPECT_FALSE(std::filesystem::exists(ChangeLogPath(path_)));
  Json snapshot = Json::parse(Slurp(path_));
  EXPECT_EQ(snapshot["resourceVersion"], store_.ResourceVersion());
  auto loaded = Reload();
  EXPECT_OK(loaded->store.Get(*cm_, "default", "a").status());
}

TEST_F(StateFileTest, WriterThreadAppendsByItselfAndIdlesWithoutWriting) {
  StateWriter writer(&store_, path_, {.batch = std::chrono::milliseconds(10)});
  ASSERT_OK(writer.Start());
  ASSERT_OK(store_.Create(*cm_, "default", ConfigMap("a", "1"), {}).status());
  const std::string log = ChangeLogPath(path_);
  for (int i = 0; i < 500 && Slurp(log).find("\"a\"") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_NE(Slurp(log).find("default/a"), std::string::npos);
  const size_t bytes = writer.LogBytesForTest();
  const auto mtime = std::filesystem::last_write_time(log);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(writer.LogBytesForTest(), bytes) << "nothing changed: nothing written";
  EXPECT_EQ(std::filesystem::last_write_time(log), mtime);
  EXPECT_EQ(writer.CompactionsForTest(), 1) << "only the first snapshot";
}

TEST_F(StateFileTest, CompactsWhenTheLogOutgrowsTheSnapshot) {
  StateWriter writer(&store_, path_, {.compact_min_bytes = 0, .compact_ratio = 1.0});
  ASSERT_OK(writer.Start());
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK(store_.Create(*cm_, "default", ConfigMap("a" + std::to_string(i), "1"), {}).status());
    ASSERT_OK(writer.Flush());
  }
  EXPECT_GT(writer.CompactionsForTest(), 1);
  auto loaded = Reload();
  EXPECT_EQ(loaded->store.ObjectCount(), store_.ObjectCount());
  EXPECT_EQ(loaded->store.ResourceVersion(), store_.ResourceVersion());
}

// A crash after a compaction's rename but before the log was emptied leaves changes the
// snapshot already holds: replaying them must not move anything back.
TEST_F(StateFileTest, StaleLogEntriesAreSkipped) {
  StateWriter writer(&store_, path_, {});
  ASSERT_OK(writer.Start());
  ASSERT_OK(store_.Create(*cm_, "default", ConfigMap("a", "1"), {}).status());
  ASSERT_OK(writer.Flush());
  const std::string stale = Slurp(ChangeLogPath(path_));
  ASSERT_OK(store_.Update(*cm_, "default", "a", ConfigMap("a", "2"), {}).status());
  ASSERT_OK(writer.Compact());
  std::ofstream(ChangeLogPath(path_)) << stale;
  auto loaded = Reload();
  ASSERT_OK_AND_ASSIGN(Json a, loaded->store.Get(*cm_, "default", "a"));
  EXPECT_EQ(a["data"]["k"], "2");
}

TEST_F(StateFileTest, TornLastLineIsDroppedOtherBadLinesAreDataLoss) {
  StateWriter writer(&store_, path_, {});
  ASSERT_OK(writer.Start());
  ASSERT_OK(store_.Create(*cm_, "default", ConfigMap("a", "1"), {}).status());
  ASSERT_OK(writer.Flush());
  const std::string good = Slurp(ChangeLogPath(path_));
  std::ofstream(ChangeLogPath(path_)) << good << R"({"rv":99,"uid":1,"storeKey":"/config)";
  auto loaded = Reload();
  EXPECT_OK(loaded->store.Get(*cm_, "default", "a").status());
  std::ofstream(ChangeLogPath(path_)) << "{nope}\n" << good;
  absl::Status st;
  Reload(&st);
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kDataLoss));
  std::ofstream(path_) << "not json";
  Reload(&st);
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(StateFileTest, CustomResourcesComeBackWithTheirDefinition) {
  auto crd_type = registry_.Find("apiextensions.k8s.io", "v1", "customresourcedefinitions");
  StateWriter writer(&store_, path_, {});
  ASSERT_OK(writer.Start());
  ASSERT_OK(store_.Create(*crd_type, "", Crd(), {}).status());
  auto widget = registry_.Find("example.com", "v1", "widgets");
  ASSERT_NE(widget, nullptr);
  Json w = {{"apiVersion", "example.com/v1"},
            {"kind", "Widget"},
            {"metadata", {{"name", "w1"}}},
            {"spec", {{"size", 3}}}};
  ASSERT_OK(store_.Create(*widget, "default", w, {}).status());
  ASSERT_OK(writer.Flush());
  auto loaded = Reload();
  auto loaded_widget = loaded->registry.Find("example.com", "v1", "widgets");
  ASSERT_NE(loaded_widget, nullptr);
  ASSERT_OK_AND_ASSIGN(Json got, loaded->store.Get(*loaded_widget, "default", "w1"));
  EXPECT_EQ(got["spec"]["size"], 3);
}

TEST_F(StateFileTest, MissingFilesAreAFreshStart) {
  Registry registry;
  Store store(&registry, &clock_);
  long long rv = store.ResourceVersion();
  ASSERT_OK(LoadState(&store, dir_ + "/none.json"));
  EXPECT_EQ(store.ResourceVersion(), rv);
}

}  // namespace
}  // namespace driftless::kube_emulator
