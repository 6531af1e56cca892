// Real vocabularies: the token table's bytes, and mask() against a brute-force
// allows() over every token at every step of random token-level walks (this
// checks the per-position mask cache), with the final text validated.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "grammar_test_util.h"
#include "tokenizer/tok_test_util.h"

namespace pl::grammartest {
namespace {

TEST(TokenTable, SpmBytes) {
  REQUIRE_TOKENIZER(tok, "llama-spm");
  const auto table = grammar::make_token_table(*tok);
  const auto& t = static_cast<const TokenTable&>(*table);
  ASSERT_EQ(t.n_vocab(), tok->n_vocab());
  EXPECT_EQ(t.bytes(tok->find_token("\xE2\x96\x81{")), " {");
  EXPECT_EQ(t.bytes(tok->find_token("<0x41>")), "A");
  EXPECT_EQ(t.bytes(tok->find_token("<0x0A>")), "\n");
  EXPECT_TRUE(t.bytes(tok->bos()).empty());
  EXPECT_TRUE(t.is_eog(tok->eos()));
  EXPECT_TRUE(t.bytes(tok->eos()).empty());
}

TEST(TokenTable, BpeBytes) {
  REQUIRE_TOKENIZER(tok, "llama-bpe");
  const auto table = grammar::make_token_table(*tok);
  const auto& t = static_cast<const TokenTable&>(*table);
  EXPECT_EQ(t.bytes(tok->find_token("\xC4\xA0{")), " {");  // "Ġ{"
  EXPECT_EQ(t.bytes(tok->find_token("\xC4\x8A")), "\n");   // "Ċ"
  for (int32_t id : tok->eog_ids()) {
    EXPECT_TRUE(t.is_eog(id));
    EXPECT_TRUE(t.bytes(id).empty());
  }
  EXPECT_TRUE(t.bytes(tok->bos()).empty());
  // The trie holds every token that has bytes, each once.
  size_t n_with_bytes = 0;
  for (int32_t id = 0; id < t.n_vocab(); ++id) n_with_bytes += !t.bytes(id).empty();
  EXPECT_EQ(t.trie_tokens().size(), n_with_bytes);
}

struct VocabCase {
  std::string vocab;
  std::string schema;
  int n_seeds;
};

std::string case_name(const ::testing::TestParamInfo<VocabCase>& i) {
  std::string s = i.param.vocab + "_" + std::to_string(i.index);
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

const char* const kPerson =
    R"({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"enum": ["a", "bc", "bcd"]}, "maxItems": 3},
        "born": {"type": "string", "format": "date"}, "score": {"type": ["number", "null"]}},
        "required": ["name", "age", "tags"]})";
const char* const kTree =
    R"({"$defs": {"n": {"type": "object", "properties": {"v": {"type": "integer"},
        "kids": {"type": "array", "items": {"$ref": "#/$defs/n"}}}, "required": ["v"]}}, "$ref": "#/$defs/n"})";

std::vector<VocabCase> vocab_cases() {
  std::vector<VocabCase> v;
  for (const char* vocab : {"llama-spm", "llama-bpe", "gpt-2", "phi-3"}) {
    const int seeds = std::string(vocab) == "llama-bpe" ? 3 : 5;
    // "json" walks nest deeply and visit many new parse states, each a cold
    // trie walk (tens of ms on the big vocabularies): fewer seeds.
    v.push_back({vocab, "json", 2});
    v.push_back({vocab, kPerson, seeds});
    v.push_back({vocab, kTree, seeds});
  }
  return v;
}

class VocabWalks : public ::testing::TestWithParam<VocabCase> {};

TEST_P(VocabWalks, MaskEqualsAllowsAndTextValidates) {
  const VocabCase& vc = GetParam();
  REQUIRE_TOKENIZER(tok, vc.vocab);
  const auto table = grammar::make_token_table(*tok);
  const json f = vc.schema == "json" ? json("json") : json::parse(vc.schema);
  const auto format = grammar::compile_format(f);
  const int32_t n_vocab = tok->n_vocab();
  std::vector<float> logits(static_cast<size_t>(n_vocab) + 7);  // padded rows must be masked too

  for (int seed = 1; seed <= vc.n_seeds; ++seed) {
    std::mt19937 rng(static_cast<uint32_t>(seed));
    Constraint c(format, table);
    std::string text;
    const size_t budget = 8 + static_cast<size_t>(seed) * 6;
    bool ended = false;
    for (size_t step = 0; step < 400 && !ended; ++step) {
      std::fill(logits.begin(), logits.end(), 0.0f);
      c.mask(logits);
      std::vector<int32_t> allowed;
      bool eog_allowed = false;
      // Brute force at every early step, then now and then (long walks in deep nesting are slow to check).
      const bool check = step < 40 || step % 8 == 0;
      for (int32_t id = 0; id < n_vocab; ++id) {
        const bool m = std::isfinite(logits[static_cast<size_t>(id)]);
        if (check) {
          ASSERT_EQ(m, c.allows(id)) << "token " << id << " '" << toktest::escaped(table->bytes(id))
                                     << "' after '" << text << "'";
        }
        if (!m) continue;
        if (table->is_eog(id)) {
          eog_allowed = true;
        } else {
          allowed.push_back(id);
        }
      }
      for (size_t i = static_cast<size_t>(n_vocab); i < logits.size(); ++i) ASSERT_TRUE(std::isinf(logits[i]));
      ASSERT_EQ(eog_allowed, c.allows(tok->eos()) || (tok->eot() >= 0 && c.allows(tok->eot())));
      if (c.must_end()) {
        ASSERT_TRUE(allowed.empty());
        ASSERT_TRUE(eog_allowed);
      }
      if (eog_allowed && (allowed.empty() || step > budget || rng() % 6 == 0)) {
        ended = true;
        break;
      }
      ASSERT_FALSE(allowed.empty()) << "dead end after '" << text << "'";
      int32_t pick = allowed[rng() % allowed.size()];
      if (step > budget) {  // steer to an end: prefer single closing bytes
        bool found = false;
        for (char pref : std::string_view("\"}],0")) {
          for (int32_t id : allowed) {
            if (table->bytes(id) == std::string(1, pref)) {
              pick = id;
              found = true;
              break;
            }
          }
          if (found) break;
        }
      }
      c.accept(pick);
      text += table->bytes(pick);
    }
    ASSERT_TRUE(ended) << "walk did not end: '" << text << "'";
    expect_valid(f, text);
  }
}

INSTANTIATE_TEST_SUITE_P(Grammar, VocabWalks, ::testing::ValuesIn(vocab_cases()), case_name);

}  // namespace
}  // namespace pl::grammartest
