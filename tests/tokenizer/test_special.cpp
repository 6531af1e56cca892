// Special tokens, BOS/EOS defaults, end-of-generation ids, and decoding
// details (leading space, control tokens), on the real vocabs.
#include <gtest/gtest.h>

#include "tok_test_util.h"
#include "tokenizer/stream_decoder.h"

namespace pl::toktest {
namespace {

using Ids = std::vector<int32_t>;

TEST(Special, SpmAddsBosByDefaultAndDecodesWithoutTheDummySpace) {
  REQUIRE_TOKENIZER(tok, "llama-spm");
  EXPECT_EQ(tok->kind(), TokenizerKind::Spm);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_FALSE(tok->add_eos());
  EXPECT_EQ(tok->encode("Hello world", true, false), (Ids{1, 15043, 3186}));
  EXPECT_EQ(tok->encode("Hello world", false, false), (Ids{15043, 3186}));
  EXPECT_EQ(tok->encode("", true, false), (Ids{1}));
  EXPECT_EQ(tok->encode("", false, false), (Ids{}));
  EXPECT_EQ(tok->decode(Ids{1, 15043, 3186}), "Hello world");
  // Rendered, <s> is the first piece, so the space stays (as HF and llama.cpp print it).
  EXPECT_EQ(tok->decode(Ids{1, 15043, 3186}, true), "<s> Hello world");
  EXPECT_EQ(tok->token_to_piece(15043), " Hello");
  EXPECT_TRUE(tok->is_eog(2));
  EXPECT_FALSE(tok->is_eog(1));
}

TEST(Special, ControlTokensOnlyWithParseSpecial) {
  REQUIRE_TOKENIZER(tok, "llama-spm");
  const Ids parsed = tok->encode("a</s>b", false, true);
  EXPECT_NE(std::find(parsed.begin(), parsed.end(), 2), parsed.end()) << ids_str(parsed);
  const Ids plain = tok->encode("a</s>b", false, false);
  EXPECT_EQ(std::find(plain.begin(), plain.end(), 2), plain.end()) << ids_str(plain);
  EXPECT_EQ(tok->decode(plain), "a</s>b");
  // After a special token SPM starts a new dummy-prefixed run, as the reference does.
  EXPECT_EQ(tok->encode("<s>Hello", false, true), (Ids{1, 15043}));
}

TEST(Special, Phi3ChatTokensAndEndOfGeneration) {
  REQUIRE_TOKENIZER(tok, "phi-3");
  const int32_t end = tok->find_token("<|end|>");
  const int32_t user = tok->find_token("<|user|>");
  ASSERT_GE(end, 0);
  ASSERT_GE(user, 0);
  EXPECT_EQ(tok->token_type(end), TokenType::Control);
  EXPECT_TRUE(tok->is_eog(end));
  EXPECT_TRUE(tok->is_eog(tok->eos()));
  EXPECT_FALSE(tok->is_eog(user));
  const Ids ids = tok->encode("<|user|>\nHi<|end|>", true, true);
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids[0], tok->bos());
  EXPECT_EQ(ids[1], user);
  EXPECT_EQ(ids.back(), end);
  const Ids plain = tok->encode("<|user|>\nHi<|end|>", true, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), end), 0);
}

TEST(Special, UserDefinedTokensAreMatchedEvenInPlainText) {
  // MPT's added tokens include runs of spaces; the reference splits them out of any text.
  REQUIRE_TOKENIZER(tok, "mpt");
  const int32_t two_spaces = tok->find_token("  ");
  ASSERT_GE(two_spaces, 0);
  EXPECT_EQ(tok->token_type(two_spaces), TokenType::UserDefined);
  const Ids ids = tok->encode("a  b", false, false);
  EXPECT_NE(std::find(ids.begin(), ids.end(), two_spaces), ids.end()) << ids_str(ids);
  EXPECT_EQ(tok->decode(ids), "a  b");
}

TEST(Special, Gpt2EndOfText) {
  REQUIRE_TOKENIZER(tok, "gpt-2");
  EXPECT_EQ(tok->kind(), TokenizerKind::Bpe);
  EXPECT_EQ(tok->pre(), "gpt-2");
  EXPECT_FALSE(tok->add_bos());
  EXPECT_EQ(tok->eos(), 50256);
  EXPECT_EQ(tok->eog_ids(), (Ids{50256}));
  EXPECT_EQ(tok->encode("Hello world<|endoftext|>", false, true), (Ids{15496, 995, 50256}));
  const Ids plain = tok->encode("<|endoftext|>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(tok->decode(plain), "<|endoftext|>");
  EXPECT_EQ(tok->decode(Ids{15496, 995, 50256}), "Hello world");
}

TEST(Special, DeepseekEndOfSentence) {
  REQUIRE_TOKENIZER(tok, "deepseek-llm");
  EXPECT_TRUE(tok->add_bos());
  EXPECT_EQ(tok->bos(), 100000);
  EXPECT_TRUE(tok->is_eog(100001));
  EXPECT_EQ(tok->eot(), 100001);  // found by its text: <｜end▁of▁sentence｜>
}

TEST(Special, BertAddsClsAndSep) {
  REQUIRE_TOKENIZER(tok, "bert-bge");
  EXPECT_EQ(tok->kind(), TokenizerKind::WordPiece);
  EXPECT_EQ(tok->bos(), 101);
  EXPECT_EQ(tok->sep(), 102);
  EXPECT_EQ(tok->unk(), 100);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_TRUE(tok->add_sep());
  EXPECT_EQ(tok->encode("Hello world!", true, false), (Ids{101, 7592, 2088, 999, 102}));
  EXPECT_EQ(tok->encode("Hello world!", false, false), (Ids{7592, 2088, 999}));
  EXPECT_EQ(tok->decode(Ids{101, 7592, 2088, 999, 102}), "hello world !");
  // Long words become [UNK] (over 100 characters), and so do words with no cover.
  EXPECT_EQ(tok->encode(std::string(101, 'a'), false, false), (Ids{100}));
}

// The demo model: its greedy ids decode to llama2.c's expected text.
TEST(Special, Stories260KGreedyIdsDecodeToTheExpectedText) {
  const fs::path model = kTestdata / "models" / "stories260K.gguf";
  if (!fs::exists(model)) GTEST_SKIP() << model << " not found";
  const Tokenizer tok = Tokenizer::from_gguf(GgufFile::open(model.string()));
  EXPECT_EQ(tok.n_vocab(), 512);
  EXPECT_EQ(tok.sep(), -1);  // stored as 0xFFFFFFFF, meaning none
  std::vector<int32_t> ids;
  std::istringstream in(read_file(kTestdata / "models" / "stories260K.greedy200.ids.txt"));
  for (int32_t id; in >> id;) ids.push_back(id);
  ASSERT_GT(ids.size(), 100u);
  const std::string expected = read_file(kTestdata / "models" / "stories260K.greedy200.expected.txt");
  EXPECT_EQ(tok.decode(ids), expected);
  StreamDecoder d(tok, /*strip_leading_space=*/true);
  std::string streamed;
  for (int32_t id : ids) streamed += d.push(id);
  streamed += d.flush();
  EXPECT_EQ(streamed, expected);
  // And the text tokenizes back to the same ids after the BOS.
  const Ids back = tok.encode(expected, true, false);
  EXPECT_EQ(back, ids);
}

}  // namespace
}  // namespace pl::toktest
