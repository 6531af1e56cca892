// Paths in and out of GGUF files: errors name the file they come from, and the
// writer refuses a path it cannot write before doing any work, leaving nothing behind.
#include <gtest/gtest.h>

#include <filesystem>

#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace pl;
using namespace pl::test;

namespace {

GgufWriter tiny_writer() {
  GgufWriter w;
  w.set("general.architecture", "llama");
  w.add_tensor("t", DType::F32, {2}, std::vector<uint8_t>(8, 0));
  return w;
}

}  // namespace

TEST(GgufPaths, FileContextPrefixesThePathOnce) {
  EXPECT_EQ(with_file_context("/m.gguf", [] { return 7; }), 7);
  EXPECT_EQ(error_of([] { with_file_context("/m.gguf", [] { fail("missing metadata key 'x'"); }); }),
            "/m.gguf: missing metadata key 'x'");
  // Already named: unchanged.
  EXPECT_EQ(error_of([] { with_file_context("/m.gguf", [] { fail("cannot open /m.gguf: gone"); }); }),
            "cannot open /m.gguf: gone");
  // No path (parsed bytes): unchanged.
  EXPECT_EQ(error_of([] { with_file_context("", [] { fail("bad"); }); }), "bad");
  // A GgufError stays one.
  EXPECT_THROW(with_file_context("/m.gguf", [] { throw GgufError("bad"); }), GgufError);
}

TEST(GgufPaths, OpenedFileKnowsItsPath) {
  TempDir dir;
  tiny_writer().write(dir.file("m.gguf"));
  EXPECT_EQ(GgufFile::open(dir.file("m.gguf")).path(), dir.file("m.gguf"));
  std::vector<uint8_t> bytes = tiny_writer().to_bytes();
  EXPECT_EQ(GgufFile::parse(bytes).path(), "");
  // A missing key's error does not name the file by itself: callers wrap it.
  GgufFile f = GgufFile::open(dir.file("m.gguf"));
  EXPECT_EQ(error_of([&] { with_file_context(f.path(), [&] { return f.get<std::string>("general.name"); }); }),
            dir.file("m.gguf") + ": missing metadata key 'general.name'");
}

TEST(GgufPaths, NonRegularFilesAreRejected) {
  TempDir dir;
  EXPECT_EQ(error_of([&] { GgufFile::open(dir.path.string()); }), dir.path.string() + " is not a regular file");
  EXPECT_EQ(error_of([] { GgufFile::open("/dev/null"); }), "/dev/null is not a regular file");
}

TEST(GgufPaths, WriterRefusesADirectoryAndLeavesNoTempFile) {
  TempDir dir;
  fs::create_directory(dir.file("q"));
  const GgufWriter w = tiny_writer();
  for (const std::string& out : {dir.file("q") + "/", dir.file("q")}) {
    EXPECT_EQ(error_of([&] { w.write(out); }), out + " is a directory, not a file path");
    EXPECT_EQ(error_of([&] { check_output_path(out); }), out + " is a directory, not a file path");
  }
  EXPECT_TRUE(fs::is_empty(dir.file("q")));
  EXPECT_FALSE(fs::exists(dir.file("q.tmp")));
  EXPECT_EQ(error_of([&] { w.write(dir.file("none/m.gguf")); }),
            "cannot write " + dir.file("none/m.gguf") + ": the directory " + dir.file("none") + " does not exist");
  EXPECT_NO_THROW(check_output_path("relative.gguf"));
  EXPECT_NO_THROW(check_output_path(dir.file("new.gguf")));
  w.write(dir.file("new.gguf"));
  EXPECT_EQ(fs::directory_iterator(dir.path) == fs::directory_iterator(), false);
  EXPECT_FALSE(fs::exists(dir.file("new.gguf.tmp")));
}
