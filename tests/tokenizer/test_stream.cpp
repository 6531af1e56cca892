// StreamDecoder: never emits a broken UTF-8 sequence, holds partial
// characters until complete, and turns bytes that cannot complete into U+FFFD.
#include <gtest/gtest.h>

#include <random>

#include "tok_test_util.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/unicode.h"

namespace pl::toktest {
namespace {

constexpr std::string_view kFffd = "\xEF\xBF\xBD";

int32_t byte_token(const Tokenizer& t, int b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", b);
  return t.find_token(buf);
}

// Streams `ids` one by one; checks every chunk is valid UTF-8 and returns the chunks.
std::vector<std::string> stream(const Tokenizer& t, const std::vector<int32_t>& ids, bool strip = false) {
  StreamDecoder d(t, strip);
  std::vector<std::string> chunks;
  for (int32_t id : ids) {
    chunks.push_back(d.push(id));
    EXPECT_TRUE(tok::is_valid_utf8(chunks.back())) << escaped(chunks.back());
  }
  chunks.push_back(d.flush());
  EXPECT_EQ(d.n_pending(), 0u);
  return chunks;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x;
  return s;
}

TEST(StreamDecoder, SpmByteFallbackEmojiIsHeldUntilComplete) {
  REQUIRE_TOKENIZER(tok, "llama-spm");
  const std::string text = "I like \xF0\x9F\xA6\x99 llamas";  // the llama emoji has no piece: 4 byte tokens
  const auto ids = tok->encode(text, false, false);
  const int32_t f0 = byte_token(*tok, 0xF0);
  auto it = std::find(ids.begin(), ids.end(), f0);
  ASSERT_NE(it, ids.end()) << "expected byte fallback for the emoji:" << ids_str(ids);
  const auto chunks = stream(*tok, ids, /*strip=*/true);
  const size_t k = static_cast<size_t>(it - ids.begin());
  EXPECT_EQ(chunks[k], "");      // <0xF0>
  EXPECT_EQ(chunks[k + 1], "");  // <0x9F>
  EXPECT_EQ(chunks[k + 2], "");  // <0xA6>
  EXPECT_EQ(chunks[k + 3], "\xF0\x9F\xA6\x99");
  EXPECT_EQ(join(chunks), text);
}

TEST(StreamDecoder, ByteLevelBpePiecesOfMultiByteCharacters) {
  for (const char* name : {"gpt-2", "llama-bpe"}) {
    const Tokenizer* tok = tokenizer_for(name);
    if (tok == nullptr) continue;
    const std::string text =
        "\xF0\x9F\x9A\x80 (normal) \xF0\x9F\x98\xB6\xE2\x80\x8D\xF0\x9F\x8C\xAB\xEF\xB8\x8F \xE4\xB8\xAD\xE6\x96\x87 "
        "\xE1\x9E\x80\xE1\x9E\xB6\xE1\x9E\x93\xE1\x9F\x8B";
    const auto ids = tok->encode(text, false, false);
    const auto chunks = stream(*tok, ids);
    EXPECT_EQ(join(chunks), text) << name;
    // Some token ends inside a character, so some push must have held bytes back.
    bool held = false;
    for (size_t i = 0; i < ids.size(); ++i) held |= chunks[i].size() < tok->token_to_piece(ids[i]).size();
    EXPECT_TRUE(held) << name << ":" << ids_str(ids);
  }
  if (tokenizer_for("gpt-2") == nullptr) GTEST_SKIP() << "gpt-2 vocab not found in " << kVocabDir;
}

TEST(StreamDecoder, InvalidBytesBecomeReplacementCharacters) {
  REQUIRE_TOKENIZER(tok, "llama-spm");
  auto b = [&](int x) { return byte_token(*tok, x); };
  const int32_t a = tok->find_token("a");
  ASSERT_GE(a, 0);
  {
    StreamDecoder d(*tok);
    EXPECT_EQ(d.push(b(0x80)), kFffd);  // a lone continuation byte can never complete
    EXPECT_EQ(d.push(b(0xF0)), "");      // may still complete...
    EXPECT_EQ(d.n_pending(), 1u);
    EXPECT_EQ(d.push(a), std::string(kFffd) + "a");  // ...until an ASCII byte arrives
    EXPECT_EQ(d.push(b(0xC0)), kFffd);  // never valid in UTF-8
    EXPECT_EQ(d.push(b(0xED)), "");
    EXPECT_EQ(d.push(b(0xA0)), std::string(kFffd) + std::string(kFffd));  // ED A0 would be a surrogate
    EXPECT_EQ(d.flush(), "");
  }
  {
    StreamDecoder d(*tok);
    EXPECT_EQ(d.push(b(0xE2)), "");
    EXPECT_EQ(d.push(b(0x82)), "");
    EXPECT_EQ(d.flush(), kFffd);  // an unfinished character is not held forever
    EXPECT_EQ(d.n_pending(), 0u);
    EXPECT_EQ(d.push(b(0xE2)), "");
    EXPECT_EQ(d.push(b(0x82)), "");
    EXPECT_EQ(d.push(b(0xAC)), "\xE2\x82\xAC");  // the decoder is usable after a flush
  }
}

// Streaming random bytes gives exactly what sanitizing them all at once gives:
// holding a partial character never changes the result, only its timing.
TEST(StreamDecoder, RandomBytesMatchWholeStringSanitizing) {
  REQUIRE_TOKENIZER(tok, "llama-spm");
  std::mt19937 rng(12345);
  // Bytes biased towards UTF-8 structure so that valid characters occur often.
  auto random_byte = [&]() -> int {
    switch (rng() % 4) {
      case 0: return static_cast<int>(rng() % 0x80);
      case 1: return 0x80 + static_cast<int>(rng() % 0x40);
      case 2: return 0xC0 + static_cast<int>(rng() % 0x40);
      default: return static_cast<int>(rng() % 0x100);
    }
  };
  for (int round = 0; round < 2000; ++round) {
    std::vector<int32_t> ids;
    std::string bytes;
    const int n = static_cast<int>(rng() % 16);
    for (int i = 0; i < n; ++i) {
      const int b = random_byte();
      ids.push_back(byte_token(*tok, b));
      bytes.push_back(static_cast<char>(b));
    }
    const auto chunks = stream(*tok, ids);
    ASSERT_EQ(join(chunks), tok::sanitize_utf8(bytes)) << escaped(bytes);
  }
}

TEST(StreamDecoder, LeadingSpaceAndSpecialTokens) {
  REQUIRE_TOKENIZER(tok, "llama-spm");
  const auto ids = tok->encode("Hello world", true, false);  // <s> Hello world
  ASSERT_EQ(ids.front(), tok->bos());
  EXPECT_EQ(join(stream(*tok, ids, /*strip=*/true)), "Hello world");
  EXPECT_EQ(join(stream(*tok, ids, /*strip=*/false)), " Hello world");  // a continuation keeps its space
  StreamDecoder with_special(*tok, false, /*render_special=*/true);
  EXPECT_EQ(with_special.push(tok->bos()), "<s>");
}

TEST(StreamDecoder, OutOfRangeIdThrowsAndKeepsState) {
  REQUIRE_TOKENIZER(tok, "llama-spm");
  StreamDecoder d(*tok);
  EXPECT_EQ(d.push(byte_token(*tok, 0xC3)), "");
  EXPECT_THROW(d.push(-1), Error);
  EXPECT_THROW(d.push(tok->n_vocab()), Error);
  EXPECT_EQ(d.push(byte_token(*tok, 0xA9)), "\xC3\xA9");
}

}  // namespace
}  // namespace pl::toktest
