#include "tools/kube-emulator/compression.h"

#include <zlib.h>

#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

namespace driftless::kube_emulator {
namespace {

TEST(CompressionTest, AcceptsGzip) {
  struct Case {
    const char* header;
    bool want;
  };
  for (const Case& c : std::vector<Case>{{"gzip", true},
                                         {"deflate, gzip, br, zstd", true},
                                         {"br", false},
                                         {"", false},
                                         {"identity", false},
                                         {"gzip;q=0", false},
                                         {"GZIP ; q=0.5", true},
                                         {"br;q=1.0, gzip;q=0.001", true},
                                         {"*", true},
                                         {"x-gzip", true}}) {
    EXPECT_EQ(AcceptsGzip(c.header), c.want) << c.header;
  }
}

TEST(CompressionTest, GzipRoundTrips) {
  std::string data;
  for (int i = 0; i < 20000; ++i) data += "{\"name\":\"object-" + std::to_string(i) + "\"},";
  ASSERT_OK_AND_ASSIGN(std::string gz, GzipFast(data));
  EXPECT_LT(gz.size(), data.size() / 4);
  ASSERT_GE(gz.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f) << "gzip magic";
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
  z_stream zs{};
  ASSERT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  std::string out(data.size() + 16, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(gz.data());
  zs.avail_in = static_cast<uInt>(gz.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  inflateEnd(&zs);
  EXPECT_EQ(out, data);
  ASSERT_OK_AND_ASSIGN(std::string empty, GzipFast(""));
  EXPECT_FALSE(empty.empty());
}

}  // namespace
}  // namespace driftless::kube_emulator
