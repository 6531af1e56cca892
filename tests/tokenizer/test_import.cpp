// HF BPE import: encoder.json + vocab.bpe -> tokenizer.ggml.* metadata, and
// what the tokenizer built from it does (Llama 3 specials, load time).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <unistd.h>

#include "core/error.h"
#include "tok_test_util.h"

namespace pl::toktest {
namespace {

Tokenizer tokenizer_from(const GgufWriter& w) {
  const std::vector<uint8_t> bytes = w.to_bytes();
  return Tokenizer::from_gguf(GgufFile::parse(bytes));
}

const char* kTinyEncoder = R"({"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "\u0120": 5, "\u0120a": 6})";
const char* kTinyMerges = "#version: 0.2\na b\nab c\n\u0120 a\n";

TEST(ImportHf, TinyVocabularyRoundTripsThroughGguf) {
  HfBpeImportOptions opt;
  opt.pre = "gpt-2";
  opt.added_tokens = {{7, "<|endoftext|>", true}, {9, "<pad>", false}};
  GgufWriter w;
  import_hf_bpe(kTinyEncoder, kTinyMerges, opt, w);
  const Tokenizer t = tokenizer_from(w);
  EXPECT_EQ(t.kind(), TokenizerKind::Bpe);
  EXPECT_EQ(t.n_vocab(), 10);
  EXPECT_EQ(t.token_text(8), "[PAD8]");  // the gap is filled
  EXPECT_EQ(t.token_type(8), TokenType::Unused);
  EXPECT_EQ(t.token_type(7), TokenType::Control);
  EXPECT_EQ(t.token_type(9), TokenType::UserDefined);
  EXPECT_EQ(t.eos(), 7);  // <|endoftext|> is the default eos
  EXPECT_TRUE(t.is_eog(7));
  EXPECT_FALSE(t.add_bos());
  EXPECT_EQ(t.encode("abc ab a", false, false), (std::vector<int32_t>{4, 5, 3, 6}));
  EXPECT_EQ(t.encode("a<|endoftext|>", false, true), (std::vector<int32_t>{0, 7}));
}

TEST(ImportHf, AddedTokenShapes) {
  auto a = parse_hf_added_tokens(R"({"added_tokens": [{"id": 5, "content": "<x>", "special": false}]})");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].id, 5);
  EXPECT_EQ(a[0].content, "<x>");
  EXPECT_FALSE(a[0].special);
  auto b = parse_hf_added_tokens(R"({"added_tokens_decoder": {"12": {"content": "<y>", "special": true}}})");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].id, 12);
  EXPECT_TRUE(b[0].special);
  auto c = parse_hf_added_tokens(R"([{"id": 1, "content": "<z>"}])");
  ASSERT_EQ(c.size(), 1u);
  auto d = parse_hf_added_tokens(R"({"<q>": 3})");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].id, 3);
  EXPECT_NE(error_of([] { parse_hf_added_tokens("[1, 2]"); }).find("content"), std::string::npos);
  EXPECT_NE(error_of([] { parse_hf_added_tokens("{not json"); }).find("JSON"), std::string::npos);
  const auto l3 = llama3_special_tokens();
  ASSERT_EQ(l3.size(), 256u);
  EXPECT_EQ(l3[0].content, "<|begin_of_text|>");
  EXPECT_EQ(l3[9].content, "<|eot_id|>");
  EXPECT_EQ(l3[9].id, 128009);
  EXPECT_EQ(l3.back().id, 128255);
}

TEST(ImportHf, BadInputsAreClearErrors) {
  HfBpeImportOptions opt;
  GgufWriter w;
  EXPECT_NE(error_of([&] { import_hf_bpe("[1]", kTinyMerges, opt, w); }).find("JSON object"), std::string::npos);
  EXPECT_NE(error_of([&] { import_hf_bpe(R"({"a": -1})", kTinyMerges, opt, w); }).find("out of range"),
            std::string::npos);
  EXPECT_NE(error_of([&] { import_hf_bpe(kTinyEncoder, "a b\nabc\n", opt, w); }).find("merges line 2"),
            std::string::npos);
  EXPECT_NE(error_of([&] { import_hf_bpe(kTinyEncoder, "", opt, w); }).find("no merges"), std::string::npos);
  HfBpeImportOptions bad_pre;
  bad_pre.pre = "no-such-pre";
  EXPECT_NE(error_of([&] { import_hf_bpe(kTinyEncoder, kTinyMerges, bad_pre, w); }).find("no-such-pre"),
            std::string::npos);
  HfBpeImportOptions clash;
  clash.added_tokens = {{0, "<s>", true}};  // id 0 is already "a"
  EXPECT_NE(error_of([&] { import_hf_bpe(kTinyEncoder, kTinyMerges, clash, w); }).find("id 0"), std::string::npos);
  HfBpeImportOptions missing_bos;
  missing_bos.bos = "<nope>";
  EXPECT_NE(error_of([&] { import_hf_bpe(kTinyEncoder, kTinyMerges, missing_bos, w); }).find("<nope>"),
            std::string::npos);
  EXPECT_NE(error_of([&] { import_hf_bpe_files("/nonexistent/encoder.json", "/nonexistent/vocab.bpe", opt, w); })
                .find("cannot open"),
            std::string::npos);
}

TEST(ImportHf, Llama3FromTestdata) {
  const auto src = hf_sources().at("llama-bpe");
  if (!fs::exists(kVocabDir / src.dir)) GTEST_SKIP() << "llama3.2-bpe not found in " << kVocabDir;
  const std::vector<uint8_t> bytes = import_hf_source(src);

  // Loading a 128k-token vocab with 280k merges: parse + build every table.
  const auto t0 = std::chrono::steady_clock::now();
  const GgufFile f = GgufFile::parse(bytes);
  const Tokenizer tok = Tokenizer::from_gguf(f);
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  // Informational only: speed is a benchmark's business, not a test's (a loaded CI machine would fail it).
  std::printf("llama3 vocab (%d tokens): GGUF parse + tokenizer load %.0f ms\n", tok.n_vocab(), load_ms);

  EXPECT_EQ(f.get<std::string>("tokenizer.ggml.pre"), "llama-bpe");
  EXPECT_EQ(tok.n_vocab(), 128256);
  EXPECT_EQ(tok.bos(), 128000);
  EXPECT_EQ(tok.eos(), 128001);
  EXPECT_EQ(tok.eot(), 128009);
  EXPECT_EQ(tok.eom(), 128008);
  EXPECT_TRUE(tok.add_bos());
  for (int32_t id : {128001, 128008, 128009}) EXPECT_TRUE(tok.is_eog(id)) << id;
  EXPECT_FALSE(tok.is_eog(128006));

  const std::string chat = "<|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|>";
  EXPECT_EQ(tok.encode(chat, true, true), (std::vector<int32_t>{128000, 128006, 882, 128007, 271, 15339, 128009}));
  const auto as_text = tok.encode(chat, false, false);
  for (int32_t id : as_text) EXPECT_LT(id, 128000) << "a control token parsed out of plain text";
  EXPECT_EQ(tok.decode(as_text), chat);
  EXPECT_EQ(tok.decode(tok.encode("Hello", true, false)), "Hello");
  EXPECT_EQ(tok.decode(tok.encode("Hello", true, false), /*render_special=*/true), "<|begin_of_text|>Hello");
}

TEST(ImportHf, WritesAFileTheReaderOpens) {
  GgufWriter w;
  import_hf_bpe(kTinyEncoder, kTinyMerges, {}, w);
  const fs::path path = fs::temp_directory_path() / ("pl_tok_import_" + std::to_string(::getpid()) + ".gguf");
  w.write(path.string());
  const Tokenizer t = Tokenizer::from_gguf(GgufFile::open(path.string()));
  fs::remove(path);
  EXPECT_EQ(t.encode("abc", false, false), (std::vector<int32_t>{4}));
}

}  // namespace
}  // namespace pl::toktest
