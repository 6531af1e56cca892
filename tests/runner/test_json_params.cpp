// Request parsing and the metrics format, without a server.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/model.h"
#include "model/random_model.h"
#include "runner/json_params.h"
#include "runner/metrics_text.h"
#include "runner_harness.h"
#include "tokenizer/tokenizer.h"

using namespace pl;
using namespace pl::runner;
using namespace pl::test;

namespace {

const Tokenizer& tokenizer() { return random_model_tokenizer(); }

}  // namespace

TEST(JsonParams, CompletionDefaultsAreOllamas) {
  CompletionParams p = parse_completion(parse_body(R"({"prompt": [1, 2, 3]})"), tokenizer());
  const SamplingParams d;
  EXPECT_EQ(p.gen.prompt, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(p.gen.n_predict, -1);
  EXPECT_FALSE(p.stream);
  EXPECT_EQ(p.gen.sampling.temperature, d.temperature);
  EXPECT_EQ(p.gen.sampling.top_k, d.top_k);
  EXPECT_EQ(p.gen.sampling.top_p, d.top_p);
  EXPECT_EQ(p.gen.sampling.min_p, d.min_p);
  EXPECT_EQ(p.gen.sampling.repeat_penalty, d.repeat_penalty);
  EXPECT_EQ(p.gen.sampling.repeat_last_n, d.repeat_last_n);
  EXPECT_FALSE(p.gen.sampling.seed.has_value());
  EXPECT_TRUE(p.gen.stop.empty());
  EXPECT_FALSE(p.gen.embedding);
}

TEST(JsonParams, CompletionFields) {
  CompletionParams p = parse_completion(parse_body(R"({
      "prompt": [5], "n_predict": 7, "temperature": 0, "top_k": 3.0, "top_p": 0.5, "min_p": 0.1,
      "repeat_penalty": 1.1, "repeat_last_n": -1, "presence_penalty": 0.2, "frequency_penalty": 0.3,
      "seed": 42, "stop": ["a", "", "bc"], "stream": true, "unknown": {"x": 1}, "n_probs": null})"),
                                        tokenizer());
  EXPECT_EQ(p.gen.n_predict, 7);
  EXPECT_EQ(p.gen.sampling.temperature, 0.0f);
  EXPECT_EQ(p.gen.sampling.top_k, 3);
  EXPECT_FLOAT_EQ(p.gen.sampling.top_p, 0.5f);
  EXPECT_FLOAT_EQ(p.gen.sampling.min_p, 0.1f);
  EXPECT_FLOAT_EQ(p.gen.sampling.repeat_penalty, 1.1f);
  EXPECT_EQ(p.gen.sampling.repeat_last_n, -1);
  EXPECT_FLOAT_EQ(p.gen.sampling.presence_penalty, 0.2f);
  EXPECT_FLOAT_EQ(p.gen.sampling.frequency_penalty, 0.3f);
  EXPECT_EQ(p.gen.sampling.seed, 42u);
  EXPECT_EQ(p.gen.stop, (std::vector<std::string>{"a", "bc"}));
  EXPECT_TRUE(p.stream);
  // A negative seed means a random one; a single stop string is accepted.
  p = parse_completion(parse_body(R"({"prompt": [5], "seed": -1, "stop": "x", "temperature": null})"), tokenizer());
  EXPECT_FALSE(p.gen.sampling.seed.has_value());
  EXPECT_EQ(p.gen.stop, (std::vector<std::string>{"x"}));
  EXPECT_EQ(p.gen.sampling.temperature, SamplingParams().temperature);
}

TEST(JsonParams, PromptTextUsesAddSpecial) {
  const Tokenizer& tok = tokenizer();
  ASSERT_GE(tok.bos(), 0);
  auto with = parse_completion(parse_body(R"({"prompt": "ab"})"), tok).gen.prompt;
  auto without = parse_completion(parse_body(R"({"prompt": "ab", "add_special": false})"), tok).gen.prompt;
  EXPECT_EQ(with, tok.encode("ab", true, true));
  EXPECT_EQ(without, tok.encode("ab", false, true));
  EXPECT_EQ(with.size(), without.size() + 1);
  EXPECT_EQ(parse_completion(parse_body(R"({"prompt": ""})"), tok).gen.prompt, std::vector<int32_t>{tok.bos()});
  // Ids are taken as they are.
  EXPECT_EQ(parse_completion(parse_body(R"({"prompt": [7], "add_special": true})"), tok).gen.prompt,
            std::vector<int32_t>{7});
}

TEST(JsonParams, ErrorsNameTheField) {
  const Tokenizer& tok = tokenizer();
  auto completion_error = [&](const char* body) {
    return error_of([&] { parse_completion(parse_body(body), tok); });
  };
  EXPECT_NE(error_of([] { parse_body("{"); }).find("invalid JSON"), std::string::npos);
  // A number beyond double is nlohmann's out_of_range, not parse_error: still a 400, not a crash (found by fuzzing).
  EXPECT_NE(error_of([] { parse_body(R"({"content": 6E6666})"); }).find("invalid JSON"), std::string::npos);
  EXPECT_NE(error_of([] { parse_body("3"); }).find("must be a JSON object"), std::string::npos);
  EXPECT_NE(completion_error("{}").find("missing field 'prompt'"), std::string::npos);
  EXPECT_NE(completion_error(R"({"prompt": {"a": 1}})").find("field 'prompt' must be a string or an array"),
            std::string::npos);
  EXPECT_NE(completion_error(R"({"prompt": [1, "a"]})").find("field 'prompt'[1] must be an integer"),
            std::string::npos);
  EXPECT_NE(completion_error(R"({"prompt": [1, 1e12]})").find("out of range"), std::string::npos);
  EXPECT_NE(completion_error(R"({"prompt": [1], "temperature": "x"})").find("'temperature' must be a number, got string"),
            std::string::npos);
  EXPECT_NE(completion_error(R"({"prompt": [1], "top_k": 2.5})").find("'top_k' must be an integer"), std::string::npos);
  EXPECT_NE(completion_error(R"({"prompt": [1], "top_k": 1e20})").find("'top_k' is out of range"),
            std::string::npos);
  EXPECT_NE(completion_error(R"({"prompt": [1], "n_predict": -2})").find("n_predict"), std::string::npos);
  EXPECT_NE(completion_error(R"({"prompt": [1], "stream": 1})").find("'stream' must be a boolean"), std::string::npos);
  EXPECT_NE(completion_error(R"({"prompt": [1], "stop": 3})").find("'stop' must be an array of strings"),
            std::string::npos);
  EXPECT_NE(completion_error(R"({"prompt": [1], "seed": "x"})").find("'seed' must be an integer"), std::string::npos);
  EXPECT_NE(completion_error(R"({"prompt": [1], "top_p": 1e300})").find("out of range"), std::string::npos);
}

TEST(JsonParams, TokenizeDetokenizeEmbeddingParallel) {
  const Tokenizer& tok = tokenizer();
  EXPECT_EQ(parse_tokenize(parse_body(R"({"content": "ab"})"), tok), tok.encode("ab", false, true));
  EXPECT_EQ(parse_tokenize(parse_body(R"({"content": "ab", "add_special": true})"), tok), tok.encode("ab", true, true));
  EXPECT_EQ(parse_detokenize(parse_body(R"({"tokens": [3, 4]})")), (std::vector<int32_t>{3, 4}));
  EmbeddingParams e = parse_embedding(parse_body(R"({"content": "ab"})"), tok);
  EXPECT_FALSE(e.batch);
  ASSERT_EQ(e.prompts.size(), 1u);
  EXPECT_EQ(e.prompts[0], tok.encode("ab", true, true));
  e = parse_embedding(parse_body(R"({"input": ["ab", "c"]})"), tok);
  EXPECT_TRUE(e.batch);
  EXPECT_EQ(e.prompts.size(), 2u);
  EXPECT_NE(error_of([&] { parse_embedding(parse_body(R"({"input": []})"), tok); }).find("empty"), std::string::npos);
  EXPECT_NE(error_of([&] { parse_embedding(parse_body(R"({"input": ["a", 1]})"), tok); }).find("'input'[1]"),
            std::string::npos);
  EXPECT_EQ(parse_parallel(parse_body(R"({"n": 4})")), 4);
  EXPECT_NE(error_of([] { parse_parallel(parse_body(R"({"n": 1.5})")); }).find("'n' must be an integer"),
            std::string::npos);
}

TEST(MetricsText, FormatParsesAndCarriesValues) {
  EngineStats s;
  s.n_parallel = 4;
  s.n_running = 3;
  s.n_waiting = 1;
  s.kv_blocks_total = 64;
  s.kv_blocks_used = 16;
  s.kv_block_size = 32;
  s.generated_tokens = 1234;
  s.step_ms_total = 2500;
  s.last_step_ms = 12.5;
  s.finished["stop"] = 7;
  s.finished["weird\"reason"] = 1;
  auto m = parse_metrics(metrics_text(s));
  EXPECT_EQ(m["parallama_runner_parallel"], 4);
  EXPECT_EQ(m["parallama_runner_requests_running"], 3);
  EXPECT_EQ(m["parallama_runner_requests_waiting"], 1);
  EXPECT_EQ(m["parallama_runner_kv_usage_ratio"], 0.25);
  EXPECT_EQ(m["parallama_runner_generated_tokens_total"], 1234);
  EXPECT_EQ(m["parallama_runner_step_seconds_total"], 2.5);
  EXPECT_EQ(m["parallama_runner_last_step_seconds"], 0.0125);
  EXPECT_EQ(m["parallama_runner_requests_finished_total{reason=\"stop\"}"], 7);
  EXPECT_EQ(m["parallama_runner_requests_finished_total{reason=\"length\"}"], 0);
  EXPECT_EQ(m["parallama_runner_requests_finished_total{reason=\"cancelled\"}"], 0);
  EXPECT_EQ(m["parallama_runner_requests_finished_total{reason=\"weird\\\"reason\"}"], 1);
  EXPECT_EQ(m.size(), 16u + 5u);  // 16 plain series, 5 finish reasons
}

TEST(MetricsText, TheTestParserRejectsBadExposition) {
  EXPECT_NONFATAL_FAILURE(parse_metrics("# HELP a x\n# TYPE a gauge\na{b=\"c} 1\n"), "bad sample line");
  EXPECT_NONFATAL_FAILURE(parse_metrics("# TYPE a gauge\na 1\n"), "no HELP before a");
  EXPECT_NONFATAL_FAILURE(parse_metrics("# HELP a x\na 1\n"), "no TYPE before a");
  EXPECT_NONFATAL_FAILURE(parse_metrics("# HELP a x\n# TYPE a gauge\na one\n"), "bad value");
  EXPECT_NONFATAL_FAILURE(parse_metrics("# HELP 1a x\n"), "bad comment line");
  EXPECT_NONFATAL_FAILURE(parse_metrics("# HELP a x\n# TYPE a gauge\na 1\na 2\n"), "duplicate series");
}
