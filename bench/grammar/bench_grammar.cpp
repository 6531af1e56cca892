// Structured output cost per sampled token: Constraint::mask() over the
// Llama 2 (32k, SPM) and Llama 3 (128k, byte-level BPE) vocabularies at
// typical parse states, warm (per-position mask cache filled) and cold (first
// visit of the state: the trie walk that fills the cache), plus allows().
// Compare with one forward step at 8 streams (~70 ms for the 1.1B model).
//   bench_grammar [--benchmark_filter=Mask]   (PARALLAMA_TESTDATA overrides the data path)
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_vocab.h"
#include "grammar/grammar.h"
#include "grammar/token_table.h"
#include "tokenizer/tokenizer.h"

using nlohmann::json;
using pl::grammar::Constraint;

namespace {

std::shared_ptr<const pl::grammar::TokenTable> table_for(const pl::Tokenizer& tok) {
  static std::map<const pl::Tokenizer*, std::shared_ptr<const pl::grammar::TokenTable>> cache;
  auto& t = cache[&tok];
  if (!t) t = pl::grammar::make_token_table(tok);
  return t;
}

const char* const kPerson =
    R"({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
        "city": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["name", "age", "city"]})";

struct Scenario {
  const char* schema;  // "json" or schema text
  const char* prefix;  // text generated so far
};
// Representative states: start of the object, just after a key, inside a
// string, inside a number.
const std::map<std::string, Scenario>& scenarios() {
  static const std::map<std::string, Scenario> s = {
      {"object_start", {"json", ""}},
      {"after_key", {kPerson, R"({"age":)"}},
      {"in_string", {"json", R"({"text": "Hello wor)"}},
      {"in_number", {kPerson, R"({"age": 12)"}},
  };
  return s;
}

// A Constraint that has accepted `prefix` as single-byte tokens.
Constraint make_state(const json& format, const pl::grammar::TokenTable& table,
                      std::shared_ptr<const pl::grammar::TokenTable> tp, const std::string& prefix) {
  std::vector<int32_t> byte_token(256, -1);
  for (int32_t id = 0; id < table.n_vocab(); ++id) {
    const std::string& b = table.bytes(id);
    if (b.size() == 1 && byte_token[static_cast<unsigned char>(b[0])] < 0) byte_token[static_cast<unsigned char>(b[0])] = id;
  }
  Constraint c(pl::grammar::compile_format(format), std::move(tp));
  for (char ch : prefix) c.accept(byte_token[static_cast<unsigned char>(ch)]);
  return c;
}

json parse_format(const char* s) { return std::string(s) == "json" ? json("json") : json::parse(s); }

void BM_Mask(benchmark::State& state, const std::string& vocab, const std::string& scenario) {
  const pl::Tokenizer* tok = pl::bench::vocab_or_skip(state, vocab);
  if (tok == nullptr) return;
  const auto tp = table_for(*tok);
  const Scenario& sc = scenarios().at(scenario);
  Constraint c = make_state(parse_format(sc.schema), *tp, tp, sc.prefix);
  std::vector<float> logits(static_cast<size_t>(tok->n_vocab()), 0.0f);
  c.mask(logits);  // fills the per-position cache
  size_t n_allowed = 0;
  for (float x : logits) n_allowed += x == 0.0f;
  for (auto _ : state) {
    c.mask(logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["allowed"] = static_cast<double>(n_allowed);
  state.counters["vocab"] = tok->n_vocab();
}

// First mask at a state never seen with this format: the trie walks that fill
// the cache (a new schema each iteration, made distinct by a description).
void BM_MaskCold(benchmark::State& state, const std::string& vocab, const std::string& scenario) {
  const pl::Tokenizer* tok = pl::bench::vocab_or_skip(state, vocab);
  if (tok == nullptr) return;
  const auto tp = table_for(*tok);
  const Scenario& sc = scenarios().at(scenario);
  std::vector<float> logits(static_cast<size_t>(tok->n_vocab()), 0.0f);
  int i = 0;
  for (auto _ : state) {
    state.PauseTiming();
    json f = std::string(sc.schema) == "json" ? json{{"type", "object"}} : json::parse(sc.schema);
    f["description"] = "bench " + std::to_string(i++);
    Constraint c = make_state(f, *tp, tp, sc.prefix);
    state.ResumeTiming();
    c.mask(logits);
    benchmark::DoNotOptimize(logits.data());
  }
}

void BM_Allows(benchmark::State& state, const std::string& vocab, const std::string& scenario) {
  const pl::Tokenizer* tok = pl::bench::vocab_or_skip(state, vocab);
  if (tok == nullptr) return;
  const auto tp = table_for(*tok);
  const Scenario& sc = scenarios().at(scenario);
  Constraint c = make_state(parse_format(sc.schema), *tp, tp, sc.prefix);
  std::mt19937 rng(1);
  std::vector<int32_t> ids(4096);
  for (int32_t& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(tok->n_vocab()));
  size_t k = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(c.allows(ids[k++ & 4095]));
  }
}

void BM_MakeTokenTable(benchmark::State& state, const std::string& vocab) {
  const pl::Tokenizer* tok = pl::bench::vocab_or_skip(state, vocab);
  if (tok == nullptr) return;
  for (auto _ : state) benchmark::DoNotOptimize(pl::grammar::make_token_table(*tok));
}

}  // namespace

#define PL_MASK_BENCH(vocab, name)                                                                          \
  BENCHMARK_CAPTURE(BM_Mask, name##_object_start, std::string(vocab), std::string("object_start"))        \
      ->Unit(benchmark::kMicrosecond);                                                                      \
  BENCHMARK_CAPTURE(BM_Mask, name##_after_key, std::string(vocab), std::string("after_key"))              \
      ->Unit(benchmark::kMicrosecond);                                                                      \
  BENCHMARK_CAPTURE(BM_Mask, name##_in_string, std::string(vocab), std::string("in_string"))              \
      ->Unit(benchmark::kMicrosecond);                                                                      \
  BENCHMARK_CAPTURE(BM_Mask, name##_in_number, std::string(vocab), std::string("in_number"))              \
      ->Unit(benchmark::kMicrosecond);                                                                      \
  BENCHMARK_CAPTURE(BM_MaskCold, name##_in_string, std::string(vocab), std::string("in_string"))          \
      ->Unit(benchmark::kMillisecond);                                                                      \
  BENCHMARK_CAPTURE(BM_MaskCold, name##_object_start, std::string(vocab), std::string("object_start"))    \
      ->Unit(benchmark::kMillisecond);                                                                      \
  BENCHMARK_CAPTURE(BM_Allows, name##_in_string, std::string(vocab), std::string("in_string"));           \
  BENCHMARK_CAPTURE(BM_Allows, name##_after_key, std::string(vocab), std::string("after_key"));           \
  BENCHMARK_CAPTURE(BM_MakeTokenTable, name, std::string(vocab))->Unit(benchmark::kMillisecond);

PL_MASK_BENCH("llama-spm", llama2)
PL_MASK_BENCH("llama-bpe", llama3)

BENCHMARK_MAIN();
