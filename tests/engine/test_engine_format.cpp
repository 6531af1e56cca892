// Structured output through the engine: constrained sequences on random and
// real models produce text that parses and validates (checked by
// json_schema_check.h, which shares nothing with src/grammar), finish with
// "stop" as soon as the value is complete, and keep the engine's guarantees:
// batched == alone, seeded sampling reproducible.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <thread>

#include "engine/engine.h"
#include "engine_test_util.h"
#include "grammar/grammar.h"
#include "json_schema_check.h"
#include "model/model.h"
#include "model/random_model.h"
#include "model_fixture.h"
#include "test_util.h"

using namespace pl;
using namespace pl::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// A random model with stories260K's vocabulary (real words, digits and
// punctuation), so that JSON can be spelled with ordinary tokens.
std::unique_ptr<Loaded> random_model(const std::string& type) {
  RandomModelSpec spec = small_model_spec(type, 5);
  spec.vocab_path = (kTestdata / "models/stories260K.gguf").string();
  return random_model_of(spec);
}

// Schemas whose every value is bounded (enums, maxLength, maxItems), so that
// even a random model, greedy, must finish.
std::vector<json> schemas() {
  return {
      json::parse(R"({"type": "object", "properties": {"name": {"type": "string", "maxLength": 8},
                      "age": {"enum": [7, 30, 99]}}, "required": ["name", "age"]})"),
      json::parse(R"({"type": "object", "properties": {"tags": {"type": "array", "maxItems": 3,
                      "items": {"type": "string", "maxLength": 4}}}, "required": ["tags"]})"),
      json::parse(R"({"type": "object", "properties": {"ok": {"type": "boolean"}, "none": {"type": "null"},
                      "color": {"enum": ["red", "green", "blue"]}}, "required": ["ok", "none", "color"]})"),
      json::parse(R"({"anyOf": [{"type": "object", "properties": {"cat": {"const": "tom"}}, "required": ["cat"]},
                                {"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 2}]})"),
      json::parse(R"({"$defs": {"p": {"type": "object", "properties": {"x": {"enum": [0, 1]},
                      "y": {"enum": [2, 3]}}, "required": ["x", "y"]}}, "type": "object",
                      "properties": {"from": {"$ref": "#/$defs/p"}, "to": {"$ref": "#/$defs/p"}},
                      "required": ["from", "to"]})"),
      json::parse(R"({"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 2, "maxItems": 3})"),
      json::parse(R"({"type": "object", "properties": {"outer": {"type": "object", "properties":
                      {"inner": {"type": "object", "properties": {"v": {"type": "string", "maxLength": 3}},
                      "required": ["v"]}}, "required": ["inner"]}}, "required": ["outer"]})"),
      json::parse(R"({"enum": ["yes", "no", {"maybe": true}]})"),
  };
}

// Greedy (seed < 0) or seeded sampling at temperature 1, constrained by `schema`.
GenerateRequest constrained(std::vector<int32_t> prompt, const json& schema, int seed = -1, int n_predict = 400) {
  GenerateRequest g;
  g.prompt = std::move(prompt);
  g.sampling.temperature = seed < 0 ? 0.0f : 1.0f;
  if (seed >= 0) g.sampling.seed = static_cast<uint64_t>(seed);
  g.n_predict = n_predict;
  g.format = grammar::compile_format(schema);
  return g;
}

// The text parses, validates, and the sequence ended because the value was complete.
void expect_valid(const Result& r, const json& schema, const std::string& what) {
  EXPECT_EQ(r.last.reason, FinishReason::Stop) << what << ": " << r.text;
  json value = json::parse(r.text, nullptr, false);
  ASSERT_FALSE(value.is_discarded()) << what << ": does not parse: " << r.text;
  EXPECT_EQ(schema_problem(value, schema), "") << what << ": " << r.text;
}

std::vector<int32_t> prompt_of(const Tokenizer& tok, const std::string& text) { return tok.encode(text, true, false); }

}  // namespace

TEST(EngineFormat, GreedyStories260KValidates) {
  REQUIRE_TESTDATA();
  auto l = stories();
  Engine e(*l->model, *l->tok, cfg(1, 1024));
  for (const json& s : schemas()) {
    Result r = drain(*e.submit(constrained(prompt_of(*l->tok, "Once upon a time"), s)));
    expect_valid(r, s, s.dump());
  }
}

TEST(EngineFormat, RandomModelsValidateGreedyAndSampled) {
  REQUIRE_TESTDATA();
  for (const char* type : {"f32", "q8_0"}) {
    auto l = random_model(type);
    Engine e(*l->model, *l->tok, cfg(1, 1024));
    for (const json& s : schemas())
      for (int seed : {-1, 1, 2}) {
        Result r = drain(*e.submit(constrained(prompt_of(*l->tok, "Tom ran."), s, seed)));
        expect_valid(r, s, std::string(type) + " seed " + std::to_string(seed) + " " + s.dump());
      }
  }
}

TEST(EngineFormat, JsonIsAnObject) {
  REQUIRE_TESTDATA();
  auto l = random_model("f32");
  Engine e(*l->model, *l->tok, cfg(1, 2048));
  int n_finished = 0;
  for (int seed = 0; seed < 6; ++seed) {
    GenerateRequest g = constrained(prompt_of(*l->tok, "Tom ran."), json::object(), seed, 1500);
    g.format = grammar::compile_format("json");
    Result r = drain(*e.submit(std::move(g)));
    ASSERT_FALSE(r.text.empty());
    EXPECT_EQ(r.text[0], '{') << r.text;
    if (r.last.reason != FinishReason::Stop) continue;  // long strings: cut by n_predict, not a grammar failure
    ++n_finished;
    json value = json::parse(r.text, nullptr, false);
    EXPECT_TRUE(value.is_object()) << r.text;
  }
  EXPECT_GT(n_finished, 0) << "no \"json\" generation finished within n_predict";
}

// Eight constrained sequences with eight different schemas, half greedy, half
// seeded: at parallel 8 (arriving mid-decode, prompts chunked by a small batch)
// each gives the tokens it gives alone.
TEST(EngineFormat, BatchedEqualsAlone) {
  REQUIRE_TESTDATA();
  for (bool real : {false, true}) {
    auto l = real ? stories() : random_model("f32");
    const std::vector<json> ss = schemas();
    const std::vector<std::string> texts = {"Once upon a time", "Tom ran.", "Lily and Ben went to the park.",
                                            "The cat sat", "One day, a little bird", "There was a dog named Max",
                                            "Sue had a red ball. She", "The sun was shining"};
    auto request = [&](size_t i) { return constrained(prompt_of(*l->tok, texts[i]), ss[i], i % 2 ? int(i) : -1); };
    std::vector<Result> alone;
    {
      Engine e(*l->model, *l->tok, cfg(1, 512));
      for (size_t i = 0; i < ss.size(); ++i) alone.push_back(drain(*e.submit(request(i))));
    }
    EngineConfig c = cfg(8, 8 * 512, 16);
    c.burst_gap_ms = 0;  // no gathering: the later ones must arrive mid-decode
    Engine e(*l->model, *l->tok, c);
    std::vector<std::unique_ptr<Request>> reqs;
    for (size_t i = 0; i < ss.size(); ++i) {
      reqs.push_back(e.submit(request(i)));
      if (i == 3) std::this_thread::sleep_for(5ms);
    }
    for (size_t i = 0; i < ss.size(); ++i) {
      Result r = drain(*reqs[i]);
      EXPECT_EQ(r.tokens, alone[i].tokens) << (real ? "stories " : "random ") << i;
      EXPECT_EQ(r.text, alone[i].text);
      expect_valid(r, ss[i], ss[i].dump());
    }
  }
}

// The constraint ends the sequence right after the token that completes the
// value: no end-of-generation token is sampled, and the count says so.
TEST(EngineFormat, EndsWhenTheValueIsComplete) {
  REQUIRE_TESTDATA();
  auto l = stories();
  Engine e(*l->model, *l->tok, cfg(1, 512));
  const json s = json::parse(R"({"const": {"a": [1, 2]}})");
  Result r = drain(*e.submit(constrained(prompt_of(*l->tok, "Once"), s)));
  EXPECT_EQ(r.last.reason, FinishReason::Stop);
  EXPECT_EQ(json::parse(r.text), s["const"]) << r.text;
  EXPECT_EQ(r.last.timings.n_generated, static_cast<int>(r.tokens.size()));
  for (int32_t id : r.tokens) EXPECT_FALSE(l->tok->is_eog(id));
  // Cut by n_predict first: "length", and the text is the start of the value.
  Result cut = drain(*e.submit(constrained(prompt_of(*l->tok, "Once"), s, -1, 2)));
  EXPECT_EQ(cut.last.reason, FinishReason::Length);
  EXPECT_EQ(cut.tokens.size(), 2u);
  EXPECT_EQ(r.text.rfind(cut.text, 0), 0u) << cut.text;
}

TEST(EngineFormat, SeededSamplingIsReproducible) {
  REQUIRE_TESTDATA();
  auto l = random_model("f32");
  Engine e(*l->model, *l->tok, cfg(2, 1024));
  const json s = schemas()[0];
  Result a = drain(*e.submit(constrained(prompt_of(*l->tok, "Tom ran."), s, 42)));
  Result b = drain(*e.submit(constrained(prompt_of(*l->tok, "Tom ran."), s, 42)));
  EXPECT_EQ(a.tokens, b.tokens);
  expect_valid(a, s, "seed 42");
}

TEST(EngineFormat, NotWithEmbeddings) {
  auto l = std::make_unique<Loaded>();
  write_random_model(small_model_spec("f32", 1), l->dir.file("m.gguf"), 2);
  l->model = Model::load(l->dir.file("m.gguf"));
  l->tok = std::make_unique<Tokenizer>(Tokenizer::from_gguf(l->model->gguf()));
  Engine e(*l->model, *l->tok, cfg(1, 256));
  GenerateRequest g;
  g.prompt = {1, 5, 6};
  g.embedding = true;
  g.format = grammar::compile_format("json");
  EXPECT_NE(error_of([&] { e.submit(std::move(g)); }).find("embedding"), std::string::npos);
}
