#include "common/config/flags.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <CLI/CLI.hpp>

#include <sstream>

namespace driftless::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;

// Sets an environment variable for the lifetime of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    setenv(name, value, /*overwrite=*/1);
  }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

struct Parsed {
  std::optional<int> exit_code;
  std::string out;
  std::string err;
};

Parsed Parse(CLI::App& app, std::vector<const char*> args) {
  args.insert(args.begin(), "prog");
  std::ostringstream out, err;
  Parsed p;
  p.exit_code = ParseFlags(app, static_cast<int>(args.size()), args.data(), out, err);
  p.out = out.str();
  p.err = err.str();
  return p;
}

TEST(EnvNameForFlagTest, UpperSnake) {
  EXPECT_EQ(EnvNameForFlag("nats-url"), "DRIFTLESS_NATS_URL");
  EXPECT_EQ(EnvNameForFlag("http-port"), "DRIFTLESS_HTTP_PORT");
  EXPECT_EQ(EnvNameForFlag("state.dir"), "DRIFTLESS_STATE_DIR");
  EXPECT_EQ(EnvNameForFlag("x2"), "DRIFTLESS_X2");
}

TEST(FlagsTest, PrecedenceFlagOverEnvOverDefault) {
  {
    CLI::App app;
    std::string url = "nats://default:4222";
    AddStringFlag(app, "nats-url", &url, "url");
    Parsed p = Parse(app, {});
    EXPECT_EQ(p.exit_code, std::nullopt) << p.err;
    EXPECT_EQ(url, "nats://default:4222");
  }
  ScopedEnv env("DRIFTLESS_NATS_URL", "nats://from-env:4222");
  {
    CLI::App app;
    std::string url = "nats://default:4222";
    AddStringFlag(app, "nats-url", &url, "url");
    Parsed p = Parse(app, {});
    EXPECT_EQ(p.exit_code, std::nullopt) << p.err;
    EXPECT_EQ(url, "nats://from-env:4222");
  }
  {
    CLI::App app;
    std::string url = "nats://default:4222";
    AddStringFlag(app, "nats-url", &url, "url");
    Parsed p = Parse(app, {"--nats-url", "nats://from-flag:4222"});
    EXPECT_EQ(p.exit_code, std::nullopt) << p.err;
    EXPECT_EQ(url, "nats://from-flag:4222");
  }
}

TEST(FlagsTest, DurationFlagFromFlagAndEnv) {
  {
    CLI::App app;
    std::chrono::milliseconds interval{std::chrono::minutes(3)};
    AddDurationFlag(app, "interval", &interval, "poll interval");
    Parsed p = Parse(app, {"--interval=1h30m"});
    EXPECT_EQ(p.exit_code, std::nullopt) << p.err;
    EXPECT_EQ(interval.count(), 5400000);
  }
  ScopedEnv env("DRIFTLESS_INTERVAL", "500ms");
  CLI::App app;
  std::chrono::milliseconds interval{std::chrono::minutes(3)};
  AddDurationFlag(app, "interval", &interval, "poll interval");
  Parsed p = Parse(app, {});
  EXPECT_EQ(p.exit_code, std::nullopt) << p.err;
  EXPECT_EQ(interval.count(), 500);
}

TEST(FlagsTest, BadDurationIsExitCode2WithMessage) {
  CLI::App app{"test", "prog"};
  std::chrono::milliseconds interval{std::chrono::minutes(3)};
  AddDurationFlag(app, "interval", &interval, "poll interval");
  Parsed p = Parse(app, {"--interval", "5fortnights"});
  EXPECT_THAT(p.exit_code, Optional(2));
  EXPECT_THAT(p.err, HasSubstr("5fortnights"));
  EXPECT_THAT(p.err, HasSubstr("--interval"));
  EXPECT_THAT(p.err, HasSubstr("--help"));
  EXPECT_EQ(interval, std::chrono::minutes(3));
}

TEST(FlagsTest, BadEnvValueIsExitCode2) {
  ScopedEnv env("DRIFTLESS_MAX_BODY", "lots");
  CLI::App app;
  uint64_t max_body = 1 << 20;
  AddByteSizeFlag(app, "max-body", &max_body, "limit");
  Parsed p = Parse(app, {});
  EXPECT_THAT(p.exit_code, Optional(2));
  EXPECT_THAT(p.err, HasSubstr("\"lots\""));
}

TEST(FlagsTest, ByteSizeFlag) {
  CLI::App app;
  uint64_t max_body = 1 << 20;
  AddByteSizeFlag(app, "max-body", &max_body, "limit");
  Parsed p = Parse(app, {"--max-body", "3Mi"});
  EXPECT_EQ(p.exit_code, std::nullopt) << p.err;
  EXPECT_EQ(max_body, 3u << 20);
}

TEST(FlagsTest, UnknownFlagIsExitCode2) {
  CLI::App app;
  ServiceFlags flags;
  RegisterServiceFlags(app, &flags);
  Parsed p = Parse(app, {"--no-such-flag"});
  EXPECT_THAT(p.exit_code, Optional(2));
  EXPECT_THAT(p.err, HasSubstr("no-such-flag"));
}

TEST(FlagsTest, BoolFlagForms) {
  {
    CLI::App app;
    bool dry_run = false;
    AddBoolFlag(app, "dry-run", &dry_run, "dry run");
    EXPECT_EQ(Parse(app, {"--dry-run"}).exit_code, std::nullopt);
    EXPECT_TRUE(dry_run);
  }
  {
    CLI::App app;
    bool dry_run = true;
    AddBoolFlag(app, "dry-run", &dry_run, "dry run");
    EXPECT_EQ(Parse(app, {"--dry-run=false"}).exit_code, std::nullopt);
    EXPECT_FALSE(dry_run);
  }
  ScopedEnv env("DRIFTLESS_DRY_RUN", "true");
  CLI::App app;
  bool dry_run = false;
  AddBoolFlag(app, "dry-run", &dry_run, "dry run");
  EXPECT_EQ(Parse(app, {}).exit_code, std::nullopt);
  EXPECT_TRUE(dry_run);
}

TEST(ServiceFlagsTest, DefaultsEnvAndFlags) {
  ScopedEnv env("DRIFTLESS_LOG_FORMAT", "text");
  CLI::App app;
  ServiceFlags flags;
  RegisterServiceFlags(app, &flags);
  Parsed p = Parse(app, {"--http-port", "9090", "--state-dir", "/tmp/x"});
  ASSERT_EQ(p.exit_code, std::nullopt) << p.err;
  EXPECT_EQ(flags.nats_url, "nats://127.0.0.1:4222");
  EXPECT_EQ(flags.http_port, 9090);
  EXPECT_EQ(flags.http_address, "127.0.0.1");
  EXPECT_EQ(flags.log_level, "info");
  EXPECT_EQ(flags.log_format, "text");
  EXPECT_EQ(flags.state_dir, "/tmp/x");
}

TEST(ServiceFlagsTest, NatsReplicasAndUrlListFromFlagAndEnv) {
  {
    CLI::App app;
    ServiceFlags flags;
    RegisterServiceFlags(app, &flags);
    ASSERT_EQ(Parse(app, {}).exit_code, std::nullopt);
    EXPECT_EQ(flags.nats_replicas, 1);
  }
  ScopedEnv env("DRIFTLESS_NATS_REPLICAS", "3");
  CLI::App app;
  ServiceFlags flags;
  RegisterServiceFlags(app, &flags);
  Parsed p = Parse(app, {"--nats-url", "nats://a:4222,nats://b:4222,nats://c:4222"});
  ASSERT_EQ(p.exit_code, std::nullopt) << p.err;
  EXPECT_EQ(flags.nats_replicas, 3);
  EXPECT_EQ(flags.nats_url, "nats://a:4222,nats://b:4222,nats://c:4222");
}

TEST(ServiceFlagsTest, RejectsBadChoicesAndPorts) {
  for (std::vector<const char*> args : {std::vector<const char*>{"--log-format", "xml"},
                                        std::vector<const char*>{"--log-level", "loud"},
                                        std::vector<const char*>{"--http-port", "70000"},
                                        std::vector<const char*>{"--http-port", "eighty"},
                                        std::vector<const char*>{"--nats-replicas", "0"},
                                        std::vector<const char*>{"--nats-replicas", "7"}}) {
    CLI::App app;
    ServiceFlags flags;
    RegisterServiceFlags(app, &flags);
    Parsed p = Parse(app, args);
    EXPECT_THAT(p.exit_code, Optional(2)) << args[0] << " " << args[1];
    EXPECT_THAT(p.err, HasSubstr(args[1]));
  }
}

TEST(ServiceFlagsTest, HelpShowsDefaultsAndEnvNamesAndExitsZero) {
  CLI::App app{"a driftless service", "driftless-test"};
  ServiceFlags flags;
  RegisterServiceFlags(app, &flags);
  std::chrono::milliseconds interval{std::chrono::minutes(3)};
  AddDurationFlag(app, "interval", &interval, "poll interval");
  Parsed p = Parse(app, {"--help"});
  EXPECT_THAT(p.exit_code, Optional(0));
  EXPECT_THAT(p.out, HasSubstr("--nats-url"));
  EXPECT_THAT(p.out, HasSubstr("DRIFTLESS_NATS_URL"));
  EXPECT_THAT(p.out, HasSubstr("nats://127.0.0.1:4222"));
  EXPECT_THAT(p.out, HasSubstr("DRIFTLESS_INTERVAL"));
  EXPECT_THAT(p.out, HasSubstr("3m"));
  EXPECT_THAT(p.out, HasSubstr("json"));
}

}  // namespace
}  // namespace driftless::config
