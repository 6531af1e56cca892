#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "raw_gguf.h"
#include "test_util.h"

namespace fs = std::filesystem;
using pl::DType;
using pl::GgufError;
using pl::GgufFile;
using pl::test::RawGguf;

using pl::test::kTestdata;

namespace {

// The message of the GgufError that parsing `bytes` throws; fails the test if it parses.
std::string parse_error(const std::vector<uint8_t>& bytes) {
  try {
    GgufFile::parse(bytes);
  } catch (const GgufError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a GgufError";
  return "";
}

#define EXPECT_ERROR_HAS(bytes, needle) EXPECT_NE(parse_error(bytes).find(needle), std::string::npos) << parse_error(bytes)

}  // namespace

TEST(GgufReader, EveryTestdataFileLoads) {
  REQUIRE_TESTDATA();
  int n_files = 0;
  for (const char* dir : {"models", "vocab"}) {
    for (const auto& e : fs::directory_iterator(kTestdata / dir)) {
      if (e.path().extension() != ".gguf") continue;
      SCOPED_TRACE(e.path().string());
      GgufFile f = GgufFile::open(e.path().string());
      EXPECT_EQ(f.version(), 3u);
      EXPECT_TRUE(f.has("general.architecture"));
      ++n_files;
    }
  }
  EXPECT_GE(n_files, 14);
}

TEST(GgufReader, Stories260KFacts) {
  REQUIRE_TESTDATA();
  GgufFile f = GgufFile::open((kTestdata / "models/stories260K.gguf").string());
  EXPECT_EQ(f.get<std::string>("general.architecture"), "llama");
  EXPECT_EQ(f.tensors().size(), 48u);
  EXPECT_EQ(f.get<uint32_t>("llama.embedding_length"), 64u);
  EXPECT_EQ(f.get<uint32_t>("llama.block_count"), 5u);
  EXPECT_EQ(f.get<uint32_t>("llama.attention.head_count"), 8u);
  EXPECT_EQ(f.get<uint32_t>("llama.attention.head_count_kv"), 4u);
  EXPECT_EQ(f.get<std::string>("tokenizer.ggml.model"), "llama");
  auto tokens = f.get_array<std::string>("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 512u);
  EXPECT_EQ(f.get_array<float>("tokenizer.ggml.scores").size(), 512u);
  EXPECT_EQ(f.get_array<int32_t>("tokenizer.ggml.token_type").size(), 512u);
  const pl::GgufTensorInfo* emb = f.find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->type, DType::F32);
  EXPECT_EQ(emb->shape, (std::vector<uint64_t>{64, 512}));
  EXPECT_EQ(emb->n_bytes, 64u * 512u * 4u);
  for (const auto& t : f.tensors()) {
    EXPECT_EQ(t.type, DType::F32) << t.name;
    EXPECT_EQ(t.offset % f.alignment(), 0u) << t.name;
    EXPECT_GE(t.data, f.file_bytes().data() + f.data_offset());
    EXPECT_LE(t.data + t.n_bytes, f.file_bytes().data() + f.file_bytes().size());
  }
  // Typed access errors name the key.
  EXPECT_THROW(f.get<std::string>("llama.block_count"), GgufError);
  EXPECT_THROW(f.get<uint32_t>("no.such.key"), GgufError);
  EXPECT_EQ(f.get_or<uint32_t>("no.such.key", 7u), 7u);
  try {
    f.get<uint32_t>("no.such.key");
  } catch (const GgufError& e) {
    EXPECT_NE(std::string(e.what()).find("no.such.key"), std::string::npos);
  }
  // Converting integer types checks the range.
  EXPECT_EQ(f.get<int64_t>("llama.block_count"), 5);
  EXPECT_EQ(f.get<uint8_t>("llama.block_count"), 5);
}

TEST(GgufReader, TinyRandomLlamaIsF16) {
  REQUIRE_TESTDATA();
  GgufFile f = GgufFile::open((kTestdata / "models/llama-2-tiny-random.gguf").string());
  EXPECT_EQ(f.get_array<std::string>("tokenizer.ggml.tokens").size(), 32000u);
  int n_f16 = 0;
  for (const auto& t : f.tensors()) n_f16 += t.type == DType::F16;
  EXPECT_GT(n_f16, 0);
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight")->type, DType::F16);
}

TEST(GgufReader, VocabFilesTokenizerModels) {
  REQUIRE_TESTDATA();
  struct Case {
    const char* file;
    const char* model;
    size_t n_vocab;
  };
  for (Case c : {Case{"ggml-vocab-llama-spm.gguf", "llama", 32000}, Case{"ggml-vocab-phi-3.gguf", "llama", 32064},
                 Case{"ggml-vocab-gpt-2.gguf", "gpt2", 50257}, Case{"ggml-vocab-falcon.gguf", "gpt2", 65024},
                 Case{"ggml-vocab-bert-bge.gguf", "bert", 30522},
                 Case{"ggml-vocab-deepseek-llm.gguf", "gpt2", 102400}}) {
    SCOPED_TRACE(c.file);
    GgufFile f = GgufFile::open((kTestdata / "vocab" / c.file).string());
    EXPECT_EQ(f.get<std::string>("tokenizer.ggml.model"), c.model);
    EXPECT_EQ(f.get_array<std::string>("tokenizer.ggml.tokens").size(), c.n_vocab);
    EXPECT_TRUE(f.tensors().empty());
  }
}

TEST(GgufReader, MissingFileNamesPath) {
  try {
    GgufFile::open("/nonexistent/model.gguf");
    FAIL();
  } catch (const pl::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf"), std::string::npos);
  }
}

// A small valid file: two keys, two F32 tensors.
static std::vector<uint8_t> small_file() {
  pl::GgufWriter w;
  w.set("general.architecture", "llama");
  w.set("test.array", pl::GgufArray{pl::GgufType::UINT32, {uint32_t{1}, uint32_t{2}, uint32_t{3}}});
  std::vector<uint8_t> a(4 * 8, 1), b(4 * 3, 2);
  w.add_tensor("a", DType::F32, {8}, std::move(a));
  w.add_tensor("b", DType::F32, {3}, std::move(b));
  return w.to_bytes();
}

TEST(GgufReader, TruncatedAtEveryByteFails) {
  std::vector<uint8_t> full = small_file();
  GgufFile ok = GgufFile::parse(full);
  const pl::GgufTensorInfo* last = ok.find_tensor("b");
  size_t data_end = ok.data_offset() + last->offset + last->n_bytes;
  for (size_t n = 0; n < data_end; ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + n);
    EXPECT_THROW(GgufFile::parse(cut), GgufError) << "prefix of " << n << " bytes parsed";
  }
  // Trailing padding after the last tensor is not needed.
  std::vector<uint8_t> cut(full.begin(), full.begin() + data_end);
  EXPECT_NO_THROW(GgufFile::parse(cut));
}

TEST(GgufReader, TruncationMessagesNameTheSection) {
  std::vector<uint8_t> full = small_file();
  EXPECT_ERROR_HAS(std::vector<uint8_t>(full.begin(), full.begin() + 2), "magic");
  EXPECT_ERROR_HAS(std::vector<uint8_t>(full.begin(), full.begin() + 6), "version");
  EXPECT_ERROR_HAS(std::vector<uint8_t>(full.begin(), full.begin() + 12), "tensor count");
  EXPECT_ERROR_HAS(RawGguf().header(3, 0, 1).u64(100).zeros(20).b, "metadata key");
  GgufFile ok = GgufFile::parse(full);
  EXPECT_ERROR_HAS(std::vector<uint8_t>(full.begin(), full.begin() + ok.data_offset() + 4), "outside");
}

TEST(GgufReader, BadHeader) {
  EXPECT_ERROR_HAS(RawGguf().u32(0x12345678).u32(3).u64(0).u64(0).b, "bad magic");
  EXPECT_ERROR_HAS(RawGguf().header(1, 0, 0).b, "version 1");
  EXPECT_ERROR_HAS(RawGguf().header(7, 0, 0).b, "version 7");
  EXPECT_ERROR_HAS(RawGguf().header(0x03000000, 0, 0).b, "big-endian");
  EXPECT_ERROR_HAS(RawGguf().header(3, 0, uint64_t{1} << 60).b, "metadata count");
  EXPECT_ERROR_HAS(RawGguf().header(3, uint64_t{1} << 60, 0).b, "tensor count");
}

TEST(GgufReader, BadMetadata) {
  // Absurd string length.
  EXPECT_ERROR_HAS(RawGguf().header(3, 0, 1).u64(uint64_t{1} << 50).zeros(16).b, "bad string length");
  // Unknown value type.
  EXPECT_ERROR_HAS(RawGguf().header(3, 0, 1).str("k").u32(13).u32(0).b, "bad value type 13");
  // Bool that is neither 0 nor 1.
  EXPECT_ERROR_HAS(RawGguf().header(3, 0, 1).str("k").u32(7).u8(2).b, "bool value 2");
  // Array: bad element type, absurd length, hostile nesting.
  EXPECT_ERROR_HAS(RawGguf().header(3, 0, 1).str("k").u32(9).u32(42).u64(1).b, "bad array element type 42");
  EXPECT_ERROR_HAS(RawGguf().header(3, 0, 1).str("k").u32(9).u32(8).u64(uint64_t{1} << 40).b, "cannot fit");
  RawGguf deep;
  deep.header(3, 0, 1).str("k").u32(9);
  for (int i = 0; i < 20; ++i) deep.u32(9).u64(1);
  deep.u32(4).u64(1).u32(5);
  EXPECT_ERROR_HAS(deep.b, "nested deeper");
  // Duplicate and empty keys.
  EXPECT_ERROR_HAS(RawGguf().header(3, 0, 2).kv_u32("k", 1).kv_u32("k", 2).b, "duplicate metadata key 'k'");
  EXPECT_ERROR_HAS(RawGguf().header(3, 0, 1).kv_u32("", 1).b, "empty metadata key");
}

TEST(GgufReader, BadAlignment) {
  EXPECT_ERROR_HAS(RawGguf().header(3, 0, 1).kv_u32("general.alignment", 0).b, "power of two");
  EXPECT_ERROR_HAS(RawGguf().header(3, 0, 1).kv_u32("general.alignment", 24).b, "power of two");
  EXPECT_ERROR_HAS(RawGguf().header(3, 0, 1).kv_str("general.alignment", "32").b, "unsigned integer");
  // A valid non-default alignment is honoured.
  RawGguf r;
  r.header(3, 1, 1).kv_u32("general.alignment", 64).tensor("t", {4}, 0, 0).pad(64).zeros(16);
  GgufFile f = GgufFile::parse(r.b);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
}

TEST(GgufReader, BadTensorInfos) {
  auto one = [](const std::vector<uint64_t>& dims, uint32_t type, uint64_t offset, size_t data = 64) {
    RawGguf r;
    r.header(3, 1, 0).tensor("w", dims, type, offset).pad(32).zeros(data);
    return r.b;
  };
  EXPECT_ERROR_HAS(one({}, 0, 0), "0 dimensions");
  EXPECT_ERROR_HAS(one({1, 1, 1, 1, 1}, 0, 0), "5 dimensions");
  EXPECT_ERROR_HAS(one({4, 0}, 0, 0), "dimension 1 is zero");
  EXPECT_ERROR_HAS(one({uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0), "overflows");
  EXPECT_ERROR_HAS(one({4}, 31, 0), "unknown type 31");
  EXPECT_ERROR_HAS(one({4}, 99, 0), "unknown type 99");
  EXPECT_ERROR_HAS(one({33}, static_cast<uint32_t>(DType::Q4_0), 0), "not a multiple of the Q4_0 block size 32");
  EXPECT_ERROR_HAS(one({4}, 0, 8), "not a multiple of the alignment");
  EXPECT_ERROR_HAS(one({4}, 0, 1024), "outside");
  EXPECT_ERROR_HAS(one({64}, 0, 0), "outside");  // 256 bytes needed, 64 present
  EXPECT_ERROR_HAS(one({4}, 0, uint64_t{1} << 63), "outside");
  // Two tensors overlapping, and duplicate names.
  RawGguf r;
  r.header(3, 2, 0).tensor("a", {16}, 0, 0).tensor("b", {16}, 0, 32).pad(32).zeros(128);
  EXPECT_ERROR_HAS(r.b, "overlaps");
  RawGguf d;
  d.header(3, 2, 0).tensor("a", {4}, 0, 0).tensor("a", {4}, 0, 32).pad(32).zeros(64);
  EXPECT_ERROR_HAS(d.b, "duplicate tensor name 'a'");
}

TEST(GgufReader, AllValueTypesAndNestedArrays) {
  pl::GgufWriter w;
  w.set("u8", uint8_t{200});
  w.set("i8", int8_t{-100});
  w.set("u16", uint16_t{60000});
  w.set("i16", int16_t{-30000});
  w.set("u32", uint32_t{4000000000u});
  w.set("i32", int32_t{-2000000000});
  w.set("f32", 1.5f);
  w.set("bool", true);
  w.set("str", "héllo");
  w.set("u64", uint64_t{1} << 40);
  w.set("i64", int64_t{-(int64_t{1} << 40)});
  w.set("f64", 2.25);
  pl::GgufArray inner1{pl::GgufType::STRING, {"a", "b"}};
  pl::GgufArray inner2{pl::GgufType::STRING, {"c"}};
  w.set("nested", pl::GgufArray{pl::GgufType::ARRAY, {inner1, inner2}});
  w.set("empty", pl::GgufArray{pl::GgufType::INT32, {}});
  std::vector<uint8_t> bytes = w.to_bytes();
  GgufFile f = GgufFile::parse(bytes);
  EXPECT_EQ(f.get<uint8_t>("u8"), 200);
  EXPECT_EQ(f.get<int8_t>("i8"), -100);
  EXPECT_EQ(f.get<uint16_t>("u16"), 60000);
  EXPECT_EQ(f.get<int16_t>("i16"), -30000);
  EXPECT_EQ(f.get<uint32_t>("u32"), 4000000000u);
  EXPECT_EQ(f.get<int32_t>("i32"), -2000000000);
  EXPECT_EQ(f.get<float>("f32"), 1.5f);
  EXPECT_EQ(f.get<bool>("bool"), true);
  EXPECT_EQ(f.get<std::string>("str"), "héllo");
  EXPECT_EQ(f.get<uint64_t>("u64"), uint64_t{1} << 40);
  EXPECT_EQ(f.get<int64_t>("i64"), -(int64_t{1} << 40));
  EXPECT_EQ(f.get<double>("f64"), 2.25);
  EXPECT_EQ(f.get<double>("f32"), 1.5);
  EXPECT_THROW(f.get<uint32_t>("i8"), GgufError);   // negative into unsigned
  EXPECT_THROW(f.get<int16_t>("u32"), GgufError);   // out of range
  EXPECT_THROW(f.get<uint32_t>("f32"), GgufError);  // float is not an integer
  const pl::GgufValue* nested = f.find("nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->array().items.size(), 2u);
  EXPECT_EQ(nested->array().items[0].array().items[1], pl::GgufValue("b"));
  EXPECT_TRUE(f.get_array<int32_t>("empty").empty());
  EXPECT_THROW(f.get_array<int32_t>("u8"), GgufError);
}
