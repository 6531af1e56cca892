// Bad input never crashes: invalid UTF-8, empty text, out-of-range ids, huge
// inputs, and bad metadata all give a clear error or a documented result.
#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "core/error.h"
#include "tok_test_util.h"

namespace pl::toktest {
namespace {

using Ids = std::vector<int32_t>;

// A small SPM vocab written from scratch: <unk> <s> </s>, byte tokens, a few pieces.
GgufWriter tiny_spm() {
  GgufWriter w;
  GgufArray tokens{GgufType::STRING, {}}, scores{GgufType::FLOAT32, {}}, types{GgufType::INT32, {}};
  auto add = [&](std::string t, float score, TokenType type) {
    tokens.items.emplace_back(std::move(t));
    scores.items.emplace_back(score);
    types.items.emplace_back(static_cast<int32_t>(type));
  };
  add("<unk>", 0, TokenType::Unknown);
  add("<s>", 0, TokenType::Control);
  add("</s>", 0, TokenType::Control);
  for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), 0, TokenType::Byte);
  add("\xE2\x96\x81", -1, TokenType::Normal);  // 259 ▁
  add("a", -2, TokenType::Normal);             // 260
  add("b", -3, TokenType::Normal);             // 261
  add("ab", -4, TokenType::Normal);            // 262
  add("\xE2\x96\x81" "ab", -5, TokenType::Normal);  // 263 ▁ab
  w.set("tokenizer.ggml.model", "llama");
  w.set("tokenizer.ggml.tokens", std::move(tokens));
  w.set("tokenizer.ggml.scores", std::move(scores));
  w.set("tokenizer.ggml.token_type", std::move(types));
  w.set("tokenizer.ggml.bos_token_id", uint32_t{1});
  w.set("tokenizer.ggml.eos_token_id", uint32_t{2});
  w.set("tokenizer.ggml.unknown_token_id", uint32_t{0});
  return w;
}

Tokenizer load(const GgufWriter& w) {
  const auto bytes = w.to_bytes();
  return Tokenizer::from_gguf(GgufFile::parse(bytes));
}

TEST(BadInput, TinySpmWorks) {
  const Tokenizer t = load(tiny_spm());
  EXPECT_EQ(t.encode("ab ab", true, false), (Ids{1, 263, 263}));  // "▁ab▁ab"
  EXPECT_EQ(t.encode("ab  ab", false, false), (Ids{263, 259, 263}));
  EXPECT_EQ(t.encode("c", false, false), (Ids{259, 3 + 'c'}));  // byte fallback
  EXPECT_EQ(t.decode(Ids{1, 263, 259, 262}), "ab ab");
  EXPECT_EQ(t.decode(Ids{263, 263}), "ab ab");
}

TEST(BadInput, SpmMetadataFlags) {
  GgufWriter w = tiny_spm();
  w.set("tokenizer.ggml.remove_extra_whitespaces", true);
  const Tokenizer collapse = load(w);
  EXPECT_EQ(collapse.encode("  ab   ab  ", false, false), (Ids{263, 263}));
  w.set("tokenizer.ggml.add_space_prefix", false);
  w.set("tokenizer.ggml.remove_extra_whitespaces", false);
  const Tokenizer no_prefix = load(w);
  EXPECT_FALSE(no_prefix.strips_leading_space());
  EXPECT_EQ(no_prefix.encode("ab ab", false, false), (Ids{262, 263}));
  EXPECT_EQ(no_prefix.decode(Ids{262, 263}), "ab ab");
}

// One Tokenizer, many threads: encode is const and shares nothing mutable.
TEST(BadInput, ConcurrentEncodeGivesTheSameIds) {
  for (const std::string name : {"llama-spm", "gpt-2", "bert-bge"}) {
    const Tokenizer* tok = tokenizer_for(name);
    if (tok == nullptr) continue;
    std::string text;
    for (int i = 0; i < 200; ++i) text += "Hello, y'all! How are you \xF0\x9F\x98\x81 ?\xE6\x88\x91\xE6\x83\xB3 3333 ";
    const Ids want = tok->encode(text, true, false);
    std::vector<Ids> got(4);
    std::vector<std::thread> threads;
    for (size_t t = 0; t < got.size(); ++t) {
      threads.emplace_back([&, t] {
        for (int k = 0; k < 5; ++k) got[t] = tok->encode(text, true, false);
      });
    }
    for (auto& th : threads) th.join();
    for (const Ids& g : got) EXPECT_EQ(g, want) << name;
  }
}

TEST(BadInput, InvalidUtf8IsReplacedNotFatal) {
  const std::string bad = "ab\xFF\xC3(\xE2\x82 \xF0\x9F\x98";
  for (const std::string name : {"llama-spm", "gpt-2", "bert-bge", "llama-bpe"}) {
    const Tokenizer* tok = tokenizer_for(name);
    if (tok == nullptr) continue;
    // Each maximal ill-formed sequence is one U+FFFD, then tokenized normally.
    const std::string fixed = "ab\xEF\xBF\xBD\xEF\xBF\xBD(\xEF\xBF\xBD \xEF\xBF\xBD";
    EXPECT_EQ(tok->encode(bad, false, false), tok->encode(fixed, false, false)) << name;
    EXPECT_EQ(tok->encode(bad, true, true), tok->encode(fixed, true, true)) << name;
    if (tok->kind() != TokenizerKind::WordPiece) {
      EXPECT_EQ(tok->decode(tok->encode(bad, false, false)), fixed) << name;
    }
  }
  const Tokenizer t = load(tiny_spm());
  EXPECT_EQ(t.encode("\xFF", false, false), (Ids{259, 3 + 0xEF, 3 + 0xBF, 3 + 0xBD}));
}

TEST(BadInput, EmptyAndWhitespaceOnly) {
  for (const std::string name : {"llama-spm", "gpt-2", "bert-bge", "llama-bpe", "deepseek-llm"}) {
    const Tokenizer* tok = tokenizer_for(name);
    if (tok == nullptr) continue;
    EXPECT_TRUE(tok->encode("", false, false).empty()) << name;
    EXPECT_TRUE(tok->encode("", false, true).empty()) << name;
    Ids specials;
    if (tok->add_bos()) specials.push_back(tok->bos());
    if (tok->add_sep()) specials.push_back(tok->sep());
    if (tok->add_eos()) specials.push_back(tok->eos());
    EXPECT_EQ(tok->encode("", true, false), specials) << name;
    EXPECT_EQ(tok->decode(Ids{}), "") << name;
    EXPECT_NO_THROW(tok->encode(std::string("\0\0", 2), false, false)) << name;
  }
}

TEST(BadInput, NulBytesAreText) {
  REQUIRE_TOKENIZER(tok, "gpt-2");
  const std::string s("a\0b\0", 4);
  EXPECT_EQ(tok->decode(tok->encode(s, false, false)), s);
}

TEST(BadInput, OutOfRangeIdsThrow) {
  REQUIRE_TOKENIZER(tok, "gpt-2");
  const int32_t n = tok->n_vocab();
  for (int32_t id : {-1, n, n + 1000, INT32_MIN, INT32_MAX}) {
    EXPECT_NE(error_of([&] { tok->decode(Ids{15496, id}); }).find("out of range"), std::string::npos) << id;
    EXPECT_THROW(tok->token_to_piece(id), Error);
    EXPECT_THROW(tok->token_text(id), Error);
    EXPECT_THROW(tok->token_type(id), Error);
    EXPECT_FALSE(tok->is_eog(id));
  }
  EXPECT_EQ(tok->find_token("no such token, surely"), -1);
}

TEST(BadInput, HugeInputsStayLinear) {
  for (const std::string name : {"gpt-2", "llama-spm", "llama-bpe", "bert-bge"}) {
    const Tokenizer* tok = tokenizer_for(name);
    if (tok == nullptr) continue;
    for (const std::string& s : {std::string(1 << 20, ' '), std::string(1 << 20, 'a'), std::string(1 << 19, '\n'),
                                 std::string(1 << 20, '9')}) {
      const double t0 = test::thread_cpu_seconds();
      const Ids ids = tok->encode(s, false, false);
      const double ms = (test::thread_cpu_seconds() - t0) * 1e3;
      // WordPiece drops whitespace; everything else yields tokens.
      if (tok->kind() != TokenizerKind::WordPiece || (s[0] != ' ' && s[0] != '\n')) {
        EXPECT_FALSE(ids.empty()) << name;
      }
      if (!kSanitized) {
        EXPECT_LT(ms, 5000.0) << name << ": " << s.size() << " bytes of '" << escaped(s.substr(0, 1)) << "'";
      }
      if (tok->kind() != TokenizerKind::WordPiece) {
        EXPECT_EQ(tok->decode(ids), s) << name;
      }
    }
  }
}

TEST(BadMetadata, ErrorsNameTheKey) {
  {
    GgufWriter w = tiny_spm();
    w.set("tokenizer.ggml.model", "t5-unigram");
    EXPECT_NE(error_of([&] { load(w); }).find("tokenizer.ggml.model"), std::string::npos);
  }
  {
    GgufWriter w = tiny_spm();
    w.remove("tokenizer.ggml.tokens");
    EXPECT_NE(error_of([&] { load(w); }).find("tokenizer.ggml.tokens"), std::string::npos);
  }
  {
    GgufWriter w = tiny_spm();
    w.set("tokenizer.ggml.bos_token_id", uint32_t{100000});
    const std::string e = error_of([&] { load(w); });
    EXPECT_NE(e.find("tokenizer.ggml.bos_token_id"), std::string::npos) << e;
    EXPECT_NE(e.find("out of range"), std::string::npos) << e;
  }
  {
    GgufWriter w = tiny_spm();
    w.set("tokenizer.ggml.scores", GgufArray{GgufType::FLOAT32, {GgufValue(1.0f)}});
    EXPECT_NE(error_of([&] { load(w); }).find("tokenizer.ggml.scores"), std::string::npos);
  }
  {
    GgufWriter w = tiny_spm();
    w.set("tokenizer.ggml.token_type", GgufArray{GgufType::INT32, std::vector<GgufValue>(264, GgufValue(int32_t{9}))});
    EXPECT_NE(error_of([&] { load(w); }).find("tokenizer.ggml.token_type"), std::string::npos);
  }
  {
    GgufWriter w = tiny_spm();
    w.set("tokenizer.ggml.eos_token_id", "two");
    EXPECT_NE(error_of([&] { load(w); }).find("tokenizer.ggml.eos_token_id"), std::string::npos);
  }
  {
    GgufWriter w = tiny_spm();
    w.remove("tokenizer.ggml.bos_token_id");
    w.set("tokenizer.ggml.add_bos_token", true);
    EXPECT_NE(error_of([&] { load(w); }).find("add_bos_token"), std::string::npos);
  }
  {
    // -1 (and 0xFFFFFFFF) mean "no such token", as converters write it.
    GgufWriter w = tiny_spm();
    w.set("tokenizer.ggml.seperator_token_id", uint32_t{0xFFFFFFFF});
    w.set("tokenizer.ggml.eot_token_id", int32_t{-1});
    const Tokenizer t = load(w);
    EXPECT_EQ(t.sep(), -1);
    EXPECT_EQ(t.eot(), -1);
  }
  {
    GgufWriter w = tiny_spm();
    w.remove("tokenizer.ggml.bos_token_id");  // the SPM default (add BOS) is dropped when there is none
    EXPECT_FALSE(load(w).add_bos());
  }
}

TEST(BadMetadata, BpePreAndMerges) {
  const fs::path gpt2 = kVocabDir / "ggml-vocab-gpt-2.gguf";
  if (!fs::exists(gpt2)) GTEST_SKIP() << gpt2 << " not found";
  const GgufFile f = GgufFile::open(gpt2.string());
  {
    GgufWriter w = GgufWriter::from_file(f);
    w.set("tokenizer.ggml.pre", "my-new-model");
    const std::string e = error_of([&] { load(w); });
    EXPECT_NE(e.find("tokenizer.ggml.pre"), std::string::npos) << e;
    EXPECT_NE(e.find("my-new-model"), std::string::npos) << e;
  }
  {
    GgufWriter w = GgufWriter::from_file(f);
    w.remove("tokenizer.ggml.merges");
    EXPECT_NE(error_of([&] { load(w); }).find("tokenizer.ggml.merges"), std::string::npos);
  }
  {
    GgufWriter w = GgufWriter::from_file(f);
    w.set("tokenizer.ggml.merges", GgufArray{GgufType::STRING, {GgufValue("nospace")}});
    EXPECT_NE(error_of([&] { load(w); }).find("tokenizer.ggml.merges"), std::string::npos);
  }
  // A missing pre or "default" is the GPT-2 split: same ids as gpt-2's own.
  const Tokenizer* ref = tokenizer_for("gpt-2");
  ASSERT_NE(ref, nullptr);
  const std::string text = "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～  \n\n 3333";
  for (const char* pre : {"", "default"}) {
    GgufWriter w = GgufWriter::from_file(f);
    if (*pre == '\0') {
      w.remove("tokenizer.ggml.pre");
    } else {
      w.set("tokenizer.ggml.pre", pre);
    }
    EXPECT_EQ(load(w).encode(text, false, false), ref->encode(text, false, false)) << "pre='" << pre << "'";
  }
}

}  // namespace
}  // namespace pl::toktest
