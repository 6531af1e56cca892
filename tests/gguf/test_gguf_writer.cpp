#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <cmath>
#include <iterator>
#include <limits>

#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "test_util.h"

namespace fs = std::filesystem;
using pl::DType;
using pl::GgufFile;
using pl::GgufWriter;

using pl::test::kTestdata;

namespace {

std::vector<uint8_t> read_all(const fs::path& p) {
  std::string s = pl::test::read_file(p);
  return {s.begin(), s.end()};
}

}  // namespace

TEST(GgufWriter, RoundTripsTestdataByteExactly) {
  REQUIRE_TESTDATA();
  int n = 0;
  for (const char* dir : {"models", "vocab"}) {
    for (const auto& e : fs::directory_iterator(kTestdata / dir)) {
      if (e.path().extension() != ".gguf") continue;
      SCOPED_TRACE(e.path().string());
      GgufFile f = GgufFile::open(e.path().string());
      std::vector<uint8_t> original = read_all(e.path());
      std::vector<uint8_t> rewritten = GgufWriter::from_file(f).to_bytes();
      EXPECT_EQ(rewritten.size(), original.size());
      EXPECT_TRUE(rewritten == original);
      ++n;
    }
  }
  EXPECT_GE(n, 14);
}

TEST(GgufWriter, RoundTripsMetadataAndTensors) {
  GgufWriter w;
  w.set("general.architecture", "llama");
  w.set("general.alignment", uint32_t{64});
  w.set("llama.block_count", uint32_t{2});
  w.set("tokenizer.ggml.tokens", pl::GgufArray{pl::GgufType::STRING, {"<s>", "a", "b"}});
  w.set("llama.block_count", uint32_t{3});  // replaced in place
  std::vector<uint8_t> q4(18 * 2 * 3);
  for (size_t i = 0; i < q4.size(); ++i) q4[i] = static_cast<uint8_t>(i * 7);
  w.add_tensor("q", DType::Q4_0, {64, 3}, q4);
  std::vector<uint8_t> f16(2 * 5, 9);
  w.add_tensor("h", DType::F16, {5}, std::move(f16));

  std::vector<uint8_t> bytes = w.to_bytes();
  GgufFile f = GgufFile::parse(bytes);
  EXPECT_EQ(f.alignment(), 64u);
  ASSERT_EQ(f.metadata().size(), 4u);
  EXPECT_EQ(f.metadata()[2].key, "llama.block_count");
  EXPECT_EQ(f.get<uint32_t>("llama.block_count"), 3u);
  EXPECT_EQ(f.get_array<std::string>("tokenizer.ggml.tokens"), (std::vector<std::string>{"<s>", "a", "b"}));
  ASSERT_EQ(f.tensors().size(), 2u);
  const auto& q = f.tensors()[0];
  EXPECT_EQ(q.name, "q");
  EXPECT_EQ(q.type, DType::Q4_0);
  EXPECT_EQ(q.shape, (std::vector<uint64_t>{64, 3}));
  EXPECT_EQ(std::vector<uint8_t>(q.bytes().begin(), q.bytes().end()), q4);
  EXPECT_EQ(f.tensors()[1].offset % 64, 0u);
  // Writing what we read gives the same bytes.
  EXPECT_TRUE(GgufWriter::from_file(f).to_bytes() == bytes);
}

TEST(GgufWriter, RoundTripsNanFloatsBitForBit) {
  GgufWriter w;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  w.set("x", nan);
  w.set("scores", pl::GgufArray{pl::GgufType::FLOAT32, {1.0f, nan, -0.0f}});
  std::vector<uint8_t> bytes = w.to_bytes();
  GgufFile f = GgufFile::parse(bytes);
  EXPECT_TRUE(std::isnan(f.get<float>("x")));
  EXPECT_TRUE(std::isnan(f.get_array<float>("scores")[1]));
  EXPECT_TRUE(std::signbit(f.get_array<float>("scores")[2]));
  EXPECT_TRUE(GgufWriter::from_file(f).to_bytes() == bytes);
  // The input the fuzzer found (a NaN among tokenizer scores) round-trips byte for byte too.
  std::vector<uint8_t> found = read_all(fs::path(PARALLAMA_SOURCE_DIR) / "tests/gguf/fuzz_regressions/nan-float-roundtrip.gguf");
  GgufFile g = GgufFile::parse(found);
  std::vector<uint8_t> again = GgufWriter::from_file(g).to_bytes();
  EXPECT_TRUE(GgufWriter::from_file(GgufFile::parse(again)).to_bytes() == again);
}

TEST(GgufWriter, WritesFileAtomically) {
  fs::path dir = fs::temp_directory_path() / ("pl_gguf_writer_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  GgufWriter w;
  w.set("general.architecture", "llama");
  w.add_tensor("t", DType::F32, {2}, std::vector<uint8_t>(8, 0));
  std::string path = (dir / "m.gguf").string();
  w.write(path);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.tensors().size(), 1u);
  EXPECT_THROW(w.write((dir / "no/such/dir/m.gguf").string()), pl::Error);
  fs::remove_all(dir);
}

TEST(GgufWriter, RejectsBadTensors) {
  GgufWriter w;
  EXPECT_THROW(w.add_tensor("t", DType::F32, {4}, std::vector<uint8_t>(15)), pl::Error);  // wrong byte count
  EXPECT_THROW(w.add_tensor("t", DType::Q8_0, {16}, std::vector<uint8_t>(17)), pl::Error);  // not a whole block
  EXPECT_THROW(w.add_tensor("t", DType::F32, {}, std::vector<uint8_t>()), pl::Error);
  EXPECT_THROW(w.add_tensor("t", DType::F32, {0}, std::vector<uint8_t>()), pl::Error);
  w.add_tensor("t", DType::F32, {1}, std::vector<uint8_t>(4));
  EXPECT_THROW(w.add_tensor("t", DType::F32, {1}, std::vector<uint8_t>(4)), pl::Error);  // duplicate
  // Arrays must be homogeneous.
  w.set("bad", pl::GgufArray{pl::GgufType::UINT32, {uint32_t{1}, "x"}});
  EXPECT_THROW(w.to_bytes(), pl::Error);
}
