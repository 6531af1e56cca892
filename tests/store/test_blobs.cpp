#include <gtest/gtest.h>

#include <fstream>

#include "store/sha256.h"
#include "store_fixture.h"

namespace fs = std::filesystem;
using pl::store::sha256_file_hex;
using pl::store::sha256_hex;
using pl::test::error_of;

namespace {
void write_text(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }
const std::string kAbc = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
}  // namespace

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ("sha256:" + sha256_hex("abc"), kAbc);
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // Streaming in uneven pieces over a chunk boundary gives the same digest as one call.
  std::string big(3'000'001, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + 7);
  pl::store::Sha256 h;
  for (size_t pos = 0; pos < big.size(); pos += 4097) h.update(std::string_view(big).substr(pos, 4097));
  const std::string streamed = h.hex_digest();
  EXPECT_EQ(streamed, sha256_hex(big));
  pl::test::TempDir d;
  write_text(d.path / "big", big);
  EXPECT_EQ(sha256_file_hex(d.path / "big"), streamed);
  EXPECT_NE(error_of([&] { sha256_file_hex(d.path / "missing"); }).find("cannot open"), std::string::npos);
}

TEST(Blobs, DigestFormsAndPaths) {
  pl::test::StoreFixture f;
  const std::string hex = kAbc.substr(7);
  EXPECT_EQ(f.store.blob_path(kAbc), f.store.root() / "blobs" / ("sha256-" + hex));
  EXPECT_EQ(f.store.blob_path("sha256-" + hex), f.store.blob_path(kAbc));
  for (const std::string& bad : std::vector<std::string>{"", "sha256:", "sha256:abc", "md5:" + hex, "sha256:../../../../etc/passwd",
                                "sha256:" + hex + "0", "sha256/" + hex, "sha256:" + std::string(64, 'g')}) {
    SCOPED_TRACE(bad);
    EXPECT_NE(error_of([&] { f.store.blob_path(bad); }).find("invalid digest"), std::string::npos);
  }
  EXPECT_FALSE(f.store.has_blob(kAbc));
}

TEST(Blobs, PutBlobChecksTheDigest) {
  pl::test::StoreFixture f;
  write_text(f.dir.path / "abc", "abc");
  write_text(f.dir.path / "abd", "abd");
  EXPECT_NE(error_of([&] { f.store.put_blob(kAbc, f.dir.path / "abd"); }).find("digest mismatch: expected " + kAbc),
            std::string::npos);
  EXPECT_FALSE(f.store.has_blob(kAbc));
  EXPECT_EQ(f.n_blobs(), 0u);  // no temp file left behind
  f.store.put_blob(kAbc, f.dir.path / "abc");
  EXPECT_TRUE(f.store.has_blob(kAbc));
  EXPECT_EQ(pl::test::read_file(f.store.blob_path(kAbc)), "abc");
  EXPECT_EQ(fs::status(f.store.blob_path(kAbc)).permissions() & fs::perms::others_read, fs::perms::others_read);
  // A wrong digest is reported even when the claimed blob already exists.
  EXPECT_NE(error_of([&] { f.store.put_blob(kAbc, f.dir.path / "abd"); }).find("digest mismatch"), std::string::npos);
  EXPECT_EQ(pl::test::read_file(f.store.blob_path(kAbc)), "abc");
  EXPECT_NE(error_of([&] { f.store.put_blob(kAbc, f.dir.path / "missing"); }).find("cannot open"), std::string::npos);

  EXPECT_EQ(f.store.import_file(f.dir.path / "abc"), kAbc);
  const std::string d = f.store.import_file(f.dir.path / "abd");
  EXPECT_EQ(d, "sha256:" + sha256_hex("abd"));
  EXPECT_EQ(f.n_blobs(), 2u);
}

TEST(Blobs, BlobWriterStreamsAndVerifies) {
  pl::test::StoreFixture f;
  {
    pl::store::BlobWriter w = f.store.begin_blob();
    w.write("a", 1);
    w.write("bc", 2);
    EXPECT_EQ(w.n_bytes(), 3u);
    w.commit(kAbc);
  }
  EXPECT_EQ(pl::test::read_file(f.store.blob_path(kAbc)), "abc");
  {
    pl::store::BlobWriter w = f.store.begin_blob();
    w.write("xyz", 3);
    EXPECT_NE(error_of([&] { w.commit("sha256:" + sha256_hex("xy")); }).find("digest mismatch"), std::string::npos);
  }
  {
    pl::store::BlobWriter w = f.store.begin_blob();
    w.write("abandoned", 9);
  }  // never committed
  EXPECT_EQ(f.n_blobs(), 1u);
}

TEST(Blobs, PruneKeepsWhatAnyManifestNames) {
  pl::test::StoreFixture f;
  write_text(f.dir.path / "abc", "abc");
  write_text(f.dir.path / "other", "other");
  f.store.put_blob(kAbc, f.dir.path / "abc");
  const std::string other = f.store.import_file(f.dir.path / "other");
  // A manifest that is not even JSON still protects the blobs it names.
  fs::create_directories(f.store.root() / "manifests/h/n/m");
  write_text(f.store.root() / "manifests/h/n/m/t", "garbage " + kAbc + " garbage");
  EXPECT_EQ(f.store.prune_blobs(), 1u);
  EXPECT_TRUE(f.store.has_blob(kAbc));
  EXPECT_FALSE(f.store.has_blob(other));
  EXPECT_EQ(pl::store::Store(f.dir.path / "empty").prune_blobs(), 0u);
}
