// Golden tests over third-party fixtures, read in place from the corpus:
//  - gitops-engine pkg/health/testdata with EXPECTED-HEALTH.tsv (file → status, or "(nil"
//    for kinds without a check), every row;
//  - Argo CD resource_customizations/<group>/<Kind>/health_test.yaml (inputPath → status and
//    message), every entry.
// One generated test per fixture; the count tests make sure a missing corpus cannot pass.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/health/health.h"
#include "common/manifest/manifest.h"

namespace driftless::health {
namespace {

namespace fs = std::filesystem;
using manifest::Json;

const fs::path kCorpus = DRIFTLESS_CORPUS_DIR;
const fs::path kEngineDir = kCorpus / "gitops-engine" / "health-testdata";
const fs::path kArgoCdDir = kCorpus / "argocd" / "resource-health-testdata";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string TestName(std::string_view s) {
  std::string out;
  for (char c : s) out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return out;
}

// Parses a fixture; the gitops-engine files hold one object each.
absl::StatusOr<Json> LoadObject(const fs::path& path) {
  std::string text = ReadFile(path);
  if (path.filename() == "statefulset-ondelete.yaml") {
    // This fixture repeats `updateStrategy: {type: OnDelete}` in spec. Go's YAML reader
    // keeps the last copy; ours rejects duplicate keys (by design, see manifest.h). The two
    // copies are identical, so drop the second.
    const std::string dup = "  updateStrategy:\n    type: OnDelete\n";
    size_t first = text.find(dup);
    size_t second = first == std::string::npos ? first : text.find(dup, first + 1);
    if (second != std::string::npos) text.erase(second, dup.size());
  }
  return manifest::ParseYaml(text, path.string());
}

// --- gitops-engine: EXPECTED-HEALTH.tsv ---------------------------------------------------

struct TsvRow {
  std::string file;      // relative to kEngineDir
  std::string expected;  // "Healthy", ... or "" for "no built-in check"
};

std::vector<TsvRow> LoadTsv() {
  std::vector<TsvRow> rows;
  std::istringstream in(ReadFile(kEngineDir / "EXPECTED-HEALTH.tsv"));
  std::string line;
  while (std::getline(in, line)) {
    size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;
    std::string expected = line.substr(tab + 1);
    rows.push_back({line.substr(0, tab), expected.starts_with("(nil") ? "" : expected});
  }
  return rows;
}

void PrintTo(const TsvRow& row, std::ostream* os) { *os << row.file << " -> " << row.expected; }

class GitopsEngineGolden : public testing::TestWithParam<TsvRow> {};

TEST_P(GitopsEngineGolden, Status) {
  absl::StatusOr<Json> obj = LoadObject(kEngineDir / GetParam().file);
  ASSERT_TRUE(obj.ok()) << obj.status();
  std::optional<Health> h = AssessHealth(*obj);
  if (GetParam().expected.empty()) {
    EXPECT_EQ(h, std::nullopt) << Name(h->code) << ": " << h->message;
  } else {
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(Name(h->code), GetParam().expected) << h->message;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GitopsEngineGolden, testing::ValuesIn(LoadTsv()),
                         [](const testing::TestParamInfo<TsvRow>& info) {
                           return TestName(info.param.file);
                         });

TEST(GitopsEngineGoldenTable, HasEveryRow) { EXPECT_EQ(LoadTsv().size(), 49u); }

// Messages for the gitops-engine fixtures (upstream asserts only the status). Where
// gitops-engine's message is empty we give one (see core_checks.cc).
struct MessageRow {
  const char* file;
  const char* message;
};

void PrintTo(const MessageRow& row, std::ostream* os) {
  *os << row.file << " -> \"" << row.message << "\"";
}

constexpr MessageRow kEngineMessages[] = {
    {"deployment-degraded.yaml", "Deployment \"guestbook-ui\" exceeded its progress deadline"},
    {"deployment-progressing.yaml",
     "Waiting for rollout to finish: 1 old replicas are pending termination..."},
    {"deployment-suspended.yaml", "Deployment is paused"},
    {"statefulset.yaml", "statefulset has 1 ready pods (0 updated)"},
    {"daemonset-ondelete.yaml", "daemon set 0 out of 1 new pods have been updated"},
    {"pvc-pending.yaml", "Waiting for the claim to be bound"},
    {"svc-loadbalancer-unassigned.yaml", "Waiting for the load balancer to get an address"},
    {"ingress-unassigned.yaml", "Waiting for the ingress to get an address"},
    {"job-failed.yaml", "Job has reached the specified backoff limit"},
    {"job-suspended.yaml", "Job suspended"},
    {"hpa-v1-degraded.yaml", "the HPA controller was unable to get the target's current scale"},
    {"hpa-v1-progressing.yaml", "Waiting to Autoscale"},
    {"hpa-v2-healthy.yaml", "recommended size matches current size"},
    {"pod-crashloop.yaml",
     "Back-off 40s restarting failed container=main "
     "pod=my-pod_argocd(63674389-f613-11e8-a057-fe5f49266390)"},
    {"pod-imagepullbackoff.yaml",
     "Back-off pulling image \"gcr.io/heptio-images/ks-guestbook-demo:0.3\""},
    {"pod-error.yaml", "container \"main\" failed with exit code 1"},
    {"pod-failed.yaml", "container \"main\" failed with exit code 1"},
    {"pod-deletion.yaml", "Pending deletion"},
    {"apiservice-v1-true.yaml", "Passed: all checks passed"},
    {"apiservice-v1-false.yaml",
     "MissingEndpoints: endpoints for service/cert-manager-webhook in \"external-dns\" have no "
     "addresses"},
};

class GitopsEngineMessage : public testing::TestWithParam<MessageRow> {};

TEST_P(GitopsEngineMessage, Message) {
  absl::StatusOr<Json> obj = LoadObject(kEngineDir / GetParam().file);
  ASSERT_TRUE(obj.ok()) << obj.status();
  std::optional<Health> h = AssessHealth(*obj);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->message, GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GitopsEngineMessage, testing::ValuesIn(kEngineMessages),
                         [](const testing::TestParamInfo<MessageRow>& info) {
                           return TestName(info.param.file);
                         });

// --- Argo CD resource_customizations ------------------------------------------------------

enum class MessageMatch {
  kExact,
  // Flux: Argo CD reports the Ready reason; we report "<reason>: <message>".
  kPrefix,
};

struct ArgoCdCase {
  std::string dir;    // "<group>/<Kind>"
  std::string input;  // relative to dir
  std::string status;
  std::string message;
  MessageMatch match = MessageMatch::kExact;
};

const Json* MemberCaseInsensitive(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    // Argo CD reads health_test.yaml with Go's case-insensitive field matching; some files
    // spell it "inputpath".
    if (std::equal(it.key().begin(), it.key().end(), key.begin(), key.end(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      return &*it;
    }
  }
  return nullptr;
}

std::vector<ArgoCdCase> LoadArgoCdCases() {
  std::vector<ArgoCdCase> cases;
  std::error_code ec;
  std::vector<fs::path> test_files;
  for (fs::recursive_directory_iterator it(kArgoCdDir, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->path().filename() == "health_test.yaml") test_files.push_back(it->path());
  }
  std::sort(test_files.begin(), test_files.end());
  for (const fs::path& test_file : test_files) {
    absl::StatusOr<Json> doc = LoadObject(test_file);
    if (!doc.ok()) continue;  // counted by ArgoCdGoldenTable
    std::string dir = fs::relative(test_file.parent_path(), kArgoCdDir).string();
    const Json* tests = MemberCaseInsensitive(*doc, "tests");
    if (tests == nullptr || !tests->is_array()) continue;
    for (const Json& t : *tests) {
      const Json* input = MemberCaseInsensitive(t, "inputPath");
      const Json* hs = MemberCaseInsensitive(t, "healthStatus");
      if (input == nullptr || !input->is_string() || hs == nullptr) continue;
      const Json* status = MemberCaseInsensitive(*hs, "status");
      const Json* message = MemberCaseInsensitive(*hs, "message");
      ArgoCdCase c;
      c.dir = dir;
      c.input = input->get<std::string>();
      c.status = status != nullptr && status->is_string() ? status->get<std::string>() : "";
      c.message = message != nullptr && message->is_string() ? message->get<std::string>() : "";
      if (dir.find(".toolkit.fluxcd.io/") != std::string::npos) c.match = MessageMatch::kPrefix;
      cases.push_back(std::move(c));
    }
  }
  return cases;
}

void PrintTo(const ArgoCdCase& c, std::ostream* os) {
  *os << c.dir << "/" << c.input << " -> " << c.status << " \"" << c.message << "\"";
}

class ArgoCdGolden : public testing::TestWithParam<ArgoCdCase> {};

TEST_P(ArgoCdGolden, StatusAndMessage) {
  const ArgoCdCase& c = GetParam();
  absl::StatusOr<Json> obj = LoadObject(kArgoCdDir / c.dir / c.input);
  ASSERT_TRUE(obj.ok()) << obj.status();
  std::optional<Health> h = AssessHealth(*obj);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(Name(h->code), c.status) << h->message;
  if (c.match == MessageMatch::kExact) {
    EXPECT_EQ(h->message, c.message);
  } else {
    EXPECT_THAT(h->message, testing::StartsWith(c.message));
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ArgoCdGolden, testing::ValuesIn(LoadArgoCdCases()),
                         [](const testing::TestParamInfo<ArgoCdCase>& info) {
                           return TestName(info.param.dir + "/" + info.param.input);
                         });

// Fixtures in the corpus whose upstream test entries are commented out (Flux objects
// with no status yet): we still pin our answer.
struct ExtraCase {
  const char* file;  // relative to kArgoCdDir
  HealthCode code;
  const char* message;
};

void PrintTo(const ExtraCase& c, std::ostream* os) { *os << c.file; }

constexpr ExtraCase kExtraCases[] = {
    {"source.toolkit.fluxcd.io/GitRepository/testdata/progressing.yaml", HealthCode::kProgressing,
     "Status unknown"},
    {"source.toolkit.fluxcd.io/OCIRepository/testdata/progressing.yaml", HealthCode::kProgressing,
     "Status unknown"},
    {"source.toolkit.fluxcd.io/Bucket/testdata/progressing.yaml", HealthCode::kProgressing,
     "Status unknown"},
    {"source.toolkit.fluxcd.io/HelmChart/testdata/progressing.yaml", HealthCode::kProgressing,
     "Status unknown"},
    {"source.toolkit.fluxcd.io/HelmRepository/testdata/progressing.yaml", HealthCode::kProgressing,
     "Status unknown"},
    {"image.toolkit.fluxcd.io/ImagePolicy/testdata/progressing.yaml", HealthCode::kProgressing,
     "Status unknown"},
    {"image.toolkit.fluxcd.io/ImageRepository/testdata/progressing.yaml", HealthCode::kProgressing,
     "Status unknown"},
    {"image.toolkit.fluxcd.io/ImageUpdateAutomation/testdata/progressing.yaml",
     HealthCode::kProgressing, "Status unknown"},
    {"notification.toolkit.fluxcd.io/Receiver/testdata/progressing.yaml", HealthCode::kProgressing,
     "Status unknown"},
};

class ArgoCdExtra : public testing::TestWithParam<ExtraCase> {};

TEST_P(ArgoCdExtra, StatusAndMessage) {
  absl::StatusOr<Json> obj = LoadObject(kArgoCdDir / GetParam().file);
  ASSERT_TRUE(obj.ok()) << obj.status();
  EXPECT_EQ(AssessHealth(*obj), (Health{GetParam().code, GetParam().message}));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ArgoCdExtra, testing::ValuesIn(kExtraCases),
                         [](const testing::TestParamInfo<ExtraCase>& info) {
                           return TestName(info.param.file);
                         });

TEST(ArgoCdGoldenTable, ReadsEveryHealthTest) {
  std::vector<ArgoCdCase> cases = LoadArgoCdCases();
  // 27 kinds; every entry that is not commented out in the upstream files.
  EXPECT_EQ(cases.size(), 109u);
  std::vector<std::string> dirs;
  for (const ArgoCdCase& c : cases) dirs.push_back(c.dir);
  std::sort(dirs.begin(), dirs.end());
  dirs.erase(std::unique(dirs.begin(), dirs.end()), dirs.end());
  EXPECT_EQ(dirs.size(), 27u);
}

}  // namespace
}  // namespace driftless::health
