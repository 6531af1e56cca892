// Golden token ids: every .inp/.out pair in testdata/vocab (discovered by
// listing the directory, so a new pair is a new test) must tokenize exactly,
// with add_special=false and parse_special=false as the reference ran them.
#include <gtest/gtest.h>

#include "tok_test_util.h"

namespace pl::toktest {
namespace {

class GoldenVocab : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenVocab, EveryStringTokenizesToTheExpectedIds) {
  const std::string name = GetParam();
  if (name.empty()) GTEST_SKIP() << "no .inp/.out pairs found in " << kVocabDir;
  REQUIRE_TOKENIZER(tok, name);
  const auto inputs = read_inp(kVocabDir / ("ggml-vocab-" + name + ".gguf.inp"));
  const auto expected = read_out(kVocabDir / ("ggml-vocab-" + name + ".gguf.out"));
  ASSERT_EQ(inputs.size(), expected.size()) << "the .inp and .out of " << name << " disagree on the count";
  ASSERT_FALSE(inputs.empty());
  int n_bad = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<int32_t> got = tok->encode(inputs[i], false, false);
    if (got != expected[i] && ++n_bad <= 5) {
      ADD_FAILURE() << name << " string " << i << " '" << inputs[i] << "'\n  expected:" << ids_str(expected[i])
                    << "\n  got:     " << ids_str(got);
    }
  }
  EXPECT_EQ(n_bad, 0) << n_bad << " of " << inputs.size() << " strings differ";
}

// Decoding gives the text back exactly for the lossless tokenizers.
TEST_P(GoldenVocab, DecodeOfEncodeIsIdentityOnTheTestStrings) {
  const std::string name = GetParam();
  if (name.empty()) GTEST_SKIP() << "no .inp/.out pairs found in " << kVocabDir;
  REQUIRE_TOKENIZER(tok, name);
  if (tok->kind() == TokenizerKind::WordPiece) GTEST_SKIP() << "WordPiece normalizes (lowercase, accents), it is lossy";
  for (const std::string& s : read_inp(kVocabDir / ("ggml-vocab-" + name + ".gguf.inp"))) {
    const auto ids = tok->encode(s, false, false);
    EXPECT_EQ(tok->decode(ids), s) << name << ":" << ids_str(ids);
  }
}

std::vector<std::string> params() {
  std::vector<std::string> v = discover_pairs();
  if (v.empty()) v.push_back("");  // one test that skips and says why
  return v;
}

INSTANTIATE_TEST_SUITE_P(Testdata, GoldenVocab, ::testing::ValuesIn(params()), param_name);

}  // namespace
}  // namespace pl::toktest
