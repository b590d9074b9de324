// The socket stream on its own, against stub peers on 127.0.0.1: what times out, when, and how
// it is reported. End-to-end behaviour through libgit2 is in libgit2_client_test.cc.
#include "common/git/internal/socket_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <git2.h>
#include <git2/sys/stream.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/git/testing/stub_tcp_server.h"

namespace driftless::git::internal {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct StreamFree {
  void operator()(git_stream* s) const {
    if (s) s->free(s);
  }
};
using StreamPtr = std::unique_ptr<git_stream, StreamFree>;

class SocketStreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { git_libgit2_init(); }

  static StreamPtr NewStream(int port) {
    git_stream* raw = nullptr;
    EXPECT_EQ(NewSocketStreamForTest(&raw, "127.0.0.1", std::to_string(port).c_str()), 0);
    return StreamPtr(raw);
  }

  static std::string LastError() {
    const git_error* e = git_error_last();
    return e && e->message ? e->message : "";
  }
};

TEST_F(SocketStreamTest, SilentPeerTimesOutAfterReadTimeout) {
  testing::StubTcpServer silent;
  NetworkScope scope({.read = milliseconds(300)}, std::nullopt);
  StreamPtr s = NewStream(silent.port());
  ASSERT_EQ(s->connect(s.get()), 0);
  char buf[64];
  auto start = Clock::now();
  EXPECT_EQ(s->read(s.get(), buf, sizeof(buf)), -1);
  auto took = Clock::now() - start;
  EXPECT_GE(took, milliseconds(290));
  EXPECT_LT(took, std::chrono::seconds(3));
  std::string want =
      "read timed out after 300ms without data from 127.0.0.1:" + std::to_string(silent.port());
  ASSERT_TRUE(scope.timeout().has_value());
  EXPECT_FALSE(scope.timeout()->operation_deadline);
  EXPECT_EQ(scope.timeout()->message, want);
  EXPECT_EQ(LastError(), want);
  EXPECT_EQ(git_error_last()->klass, GIT_ERROR_NET);
}

TEST_F(SocketStreamTest, ReadTimeoutRestartsWithEveryByte) {
  testing::StubTcpServer trickle({.on_connection = [](int fd) {
    for (int i = 0; i < 5; ++i) {
      std::this_thread::sleep_for(milliseconds(150));
      ASSERT_EQ(write(fd, "x", 1), 1);
    }
    shutdown(fd, SHUT_WR);
  }});
  NetworkScope scope({.read = milliseconds(400)}, std::nullopt);
  StreamPtr s = NewStream(trickle.port());
  ASSERT_EQ(s->connect(s.get()), 0);
  std::string got;
  auto start = Clock::now();
  while (true) {
    char buf[16];
    ssize_t n = s->read(s.get(), buf, sizeof(buf));
    ASSERT_GE(n, 0) << LastError();
    if (n == 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(got, "xxxxx");
  EXPECT_GT(Clock::now() - start, milliseconds(400));  // longer than one read timeout in total
  EXPECT_FALSE(scope.timeout().has_value());
}

TEST_F(SocketStreamTest, OperationDeadlineCutsAReadShort) {
  testing::StubTcpServer silent;
  NetworkScope scope({.read = std::chrono::seconds(60)}, Clock::now() + milliseconds(300));
  StreamPtr s = NewStream(silent.port());
  ASSERT_EQ(s->connect(s.get()), 0);
  char buf[64];
  auto start = Clock::now();
  EXPECT_EQ(s->read(s.get(), buf, sizeof(buf)), -1);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  ASSERT_TRUE(scope.timeout().has_value());
  EXPECT_TRUE(scope.timeout()->operation_deadline);
  EXPECT_THAT(scope.timeout()->message, HasSubstr("operation deadline"));
}

TEST_F(SocketStreamTest, PassedDeadlineFailsBeforeConnecting) {
  testing::StubTcpServer server;
  NetworkScope scope({}, Clock::now() - milliseconds(1));
  StreamPtr s = NewStream(server.port());
  EXPECT_EQ(s->connect(s.get()), -1);
  ASSERT_TRUE(scope.timeout().has_value());
  EXPECT_TRUE(scope.timeout()->operation_deadline);
}

TEST_F(SocketStreamTest, WritesReturnWhatWasSentThenTimeOutWhenThePeerStopsReading) {
  testing::StubTcpServer sink;  // accepts, never reads
  NetworkScope scope({.read = milliseconds(300)}, std::nullopt);
  StreamPtr s = NewStream(sink.port());
  ASSERT_EQ(s->connect(s.get()), 0);
  std::vector<char> chunk(1 << 20, 'y');
  size_t total = 0;
  ssize_t n = 0;
  auto start = Clock::now();
  // Socket buffers on loopback hold a few MB at most.
  while (total < (size_t{256} << 20)) {
    n = s->write(s.get(), chunk.data(), chunk.size(), 0);
    if (n <= 0) break;
    EXPECT_LE(static_cast<size_t>(n), chunk.size());
    total += static_cast<size_t>(n);
  }
  EXPECT_EQ(n, -1);
  EXPECT_GT(total, 0u);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
  ASSERT_TRUE(scope.timeout().has_value());
  EXPECT_THAT(scope.timeout()->message, HasSubstr("write timed out after 300ms"));
}

TEST_F(SocketStreamTest, RefusedConnectionIsAnErrorNotATimeout) {
  int port;
  {
    testing::StubTcpServer gone;
    port = gone.port();
  }  // closed: nothing listens there now
  NetworkScope scope({}, std::nullopt);
  StreamPtr s = NewStream(port);
  EXPECT_EQ(s->connect(s.get()), -1);
  EXPECT_FALSE(scope.timeout().has_value());
  EXPECT_THAT(LastError(), HasSubstr("failed to connect to 127.0.0.1:" + std::to_string(port)));
  EXPECT_THAT(LastError(), HasSubstr("refused"));
}

TEST_F(SocketStreamTest, ConnectTimesOutWhenTheListenBacklogIsFull) {
  testing::StubTcpServer full({.accept_connections = false});
  // Fill the accept queue (backlog 0) until a handshake stalls; Linux then drops new SYNs.
  std::vector<int> fillers;
  bool stalled = false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(full.port()));
  for (int i = 0; i < 8 && !stalled; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    fillers.push_back(fd);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) continue;
    pollfd p{fd, POLLOUT, 0};
    stalled = poll(&p, 1, 300) == 0;
  }
  struct Closer {
    std::vector<int>& fds;
    ~Closer() {
      for (int fd : fds) close(fd);
    }
  } closer{fillers};
  if (!stalled) GTEST_SKIP() << "this kernel completes handshakes beyond the listen backlog";

  NetworkScope scope({.connect = milliseconds(400)}, std::nullopt);
  StreamPtr s = NewStream(full.port());
  auto start = Clock::now();
  EXPECT_EQ(s->connect(s.get()), -1);
  auto took = Clock::now() - start;
  EXPECT_GE(took, milliseconds(390));
  EXPECT_LT(took, std::chrono::seconds(3));
  ASSERT_TRUE(scope.timeout().has_value());
  EXPECT_FALSE(scope.timeout()->operation_deadline);
  EXPECT_EQ(scope.timeout()->message,
            "connect to 127.0.0.1:" + std::to_string(full.port()) + " timed out after 400ms");
}

TEST_F(SocketStreamTest, ScopesNestAndOnlyTheFirstTimeoutIsKept) {
  EXPECT_EQ(NetworkScope::Current(), nullptr);
  {
    NetworkScope outer({.read = milliseconds(1)}, std::nullopt);
    {
      NetworkScope inner({.read = milliseconds(2)}, std::nullopt);
      EXPECT_EQ(NetworkScope::Current(), &inner);
      inner.RecordTimeout({.message = "first"});
      inner.RecordTimeout({.message = "second"});
      EXPECT_EQ(inner.timeout()->message, "first");
    }
    EXPECT_EQ(NetworkScope::Current(), &outer);
    EXPECT_FALSE(outer.timeout().has_value());
    // Another thread has no scope.
    std::thread([] { EXPECT_EQ(NetworkScope::Current(), nullptr); }).join();
  }
  EXPECT_EQ(NetworkScope::Current(), nullptr);
}

}  // namespace
}  // namespace driftless::git::internal
