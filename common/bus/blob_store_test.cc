#include "common/bus/blob_store.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/time/clock.h"
#include "common/bus/testing/fake_kv_store.h"
#include "common/manifest/manifest.h"
#include "common/testing/status_matchers.h"

namespace driftless::bus {
namespace {

using ::driftless::testing::StatusIs;

std::string Bytes(size_t n) {
  std::string s(n, '\0');
  uint32_t x = 12345;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(kv_.EnsureBucket("blobs", 1, absl::ZeroDuration())); }
  testing::FakeKvStore kv_;
  BlobStore blobs_{&kv_, "blobs", 1000};
};

TEST_F(BlobStoreTest, RoundTripsAcrossChunkBoundaries) {
  for (size_t n : {0, 1, 999, 1000, 1001, 5500}) {
    const std::string data = Bytes(n);
    ASSERT_OK_AND_ASSIGN(std::string digest, blobs_.PutBlob(data));
    EXPECT_EQ(digest, "sha256:" + manifest::Sha256Hex(data));
    ASSERT_OK_AND_ASSIGN(std::string back, blobs_.GetBlob(digest));
    EXPECT_EQ(back, data) << n;
  }
}

TEST_F(BlobStoreTest, PutIsIdempotentAndDoesNotRewrite) {
  const std::string data = Bytes(2500);
  ASSERT_OK_AND_ASSIGN(std::string digest, blobs_.PutBlob(data));
  const std::string hex = digest.substr(7);
  ASSERT_OK_AND_ASSIGN(KvEntry chunk, kv_.Get("blobs", BlobStore::ChunkKey(hex, 1)));
  ASSERT_OK_AND_ASSIGN(std::string again, blobs_.PutBlob(data));
  EXPECT_EQ(again, digest);
  ASSERT_OK_AND_ASSIGN(KvEntry chunk2, kv_.Get("blobs", BlobStore::ChunkKey(hex, 1)));
  EXPECT_EQ(chunk2.revision, chunk.revision);
}

// A new reference to a blob written long ago renews it (the bucket's TTL counts from the
// last write), including blobs whose manifest predates the written= field.
TEST_F(BlobStoreTest, PutOfAnOldBlobWritesItAgain) {
  const std::string data = Bytes(2500);
  ASSERT_OK_AND_ASSIGN(std::string digest, blobs_.PutBlob(data));
  const std::string hex = digest.substr(7);
  for (const std::string& old_manifest :
       {std::string("size=2500 chunks=3 chunk_size=1000 written=") +
            std::to_string(absl::ToUnixSeconds(absl::Now() - absl::Hours(13))),
        std::string("size=2500 chunks=3 chunk_size=1000")}) {
    ASSERT_OK(kv_.Put("blobs", BlobStore::ManifestKey(hex), old_manifest).status());
    ASSERT_OK_AND_ASSIGN(KvEntry chunk, kv_.Get("blobs", BlobStore::ChunkKey(hex, 2)));
    ASSERT_OK_AND_ASSIGN(std::string again, blobs_.PutBlob(data));
    EXPECT_EQ(again, digest);
    ASSERT_OK_AND_ASSIGN(KvEntry chunk2, kv_.Get("blobs", BlobStore::ChunkKey(hex, 2)));
    EXPECT_GT(chunk2.revision, chunk.revision) << old_manifest;
    ASSERT_OK_AND_ASSIGN(KvEntry manifest, kv_.Get("blobs", BlobStore::ManifestKey(hex)));
    EXPECT_THAT(manifest.value, ::testing::HasSubstr(" written="));
    EXPECT_NE(manifest.value, old_manifest);
    ASSERT_OK_AND_ASSIGN(std::string back, blobs_.GetBlob(digest));
    EXPECT_EQ(back, data);
  }
}

TEST_F(BlobStoreTest, DetectsCorruptionAndMissingChunks) {
  const std::string data = Bytes(3000);
  ASSERT_OK_AND_ASSIGN(std::string digest, blobs_.PutBlob(data));
  const std::string hex = digest.substr(7);
  std::string bad = data.substr(1000, 1000);
  bad[10] ^= 0x5a;
  ASSERT_OK(kv_.Put("blobs", BlobStore::ChunkKey(hex, 1), bad).status());
  EXPECT_THAT(blobs_.GetBlob(digest), StatusIs(absl::StatusCode::kDataLoss));
  ASSERT_OK(kv_.Delete("blobs", BlobStore::ChunkKey(hex, 2)));
  EXPECT_THAT(blobs_.GetBlob(digest),
              StatusIs(absl::StatusCode::kDataLoss, ::testing::HasSubstr("missing")));
}

TEST_F(BlobStoreTest, RejectsBadDigestsAndReportsAbsentOnes) {
  EXPECT_THAT(blobs_.GetBlob("md5:abc"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(blobs_.GetBlob("sha256:XYZ"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(blobs_.GetBlob("sha256:" + std::string(64, 'a')),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(BlobStoreTest, EncodePayloadInlinesSmallAndStoresLarge) {
  ASSERT_OK_AND_ASSIGN(std::string small, blobs_.EncodePayload("hello", 16));
  EXPECT_EQ(small, "ihello");
  ASSERT_OK_AND_ASSIGN(std::string empty, blobs_.EncodePayload("", 0));
  EXPECT_EQ(empty, "i");
  const std::string big = Bytes(4000);
  ASSERT_OK_AND_ASSIGN(std::string ref, blobs_.EncodePayload(big, 16));
  EXPECT_EQ(ref, "dsha256:" + manifest::Sha256Hex(big));
  ASSERT_OK_AND_ASSIGN(std::string back, blobs_.DecodePayload(ref));
  EXPECT_EQ(back, big);
  ASSERT_OK_AND_ASSIGN(std::string back_small, blobs_.DecodePayload(small));
  EXPECT_EQ(back_small, "hello");
  EXPECT_THAT(blobs_.DecodePayload(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(blobs_.DecodePayload("zzz"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace driftless::bus
