// Structured output at the runner: "format" parsed into the engine request,
// and end to end over HTTP (valid output, property order, 400 for bad schemas).
#include <gtest/gtest.h>

#include "core/error.h"
#include "json_schema_check.h"
#include "model/model.h"
#include "model/random_model.h"
#include "runner/json_params.h"
#include "runner_harness.h"
#include "tokenizer/tokenizer.h"

using namespace pl;
using namespace pl::runner;
using namespace pl::test;

namespace {

const Tokenizer& tokenizer() { return random_model_tokenizer(); }

const json kPerson = json::parse(R"({"type": "object", "properties": {"name": {"type": "string", "maxLength": 10},
    "pets": {"type": "array", "maxItems": 2, "items": {"enum": ["cat", "dog"]}}, "ok": {"type": "boolean"}},
    "required": ["name", "pets", "ok"]})");

}  // namespace

TEST(JsonParamsFormat, NoneJsonSchemaAndText) {
  const Tokenizer& tok = tokenizer();
  auto parse = [&](json extra) {
    json body{{"prompt", "x"}};
    body.update(extra);
    return parse_completion(body, tok, body.dump()).gen.format;
  };
  EXPECT_EQ(parse(json::object()), nullptr);
  EXPECT_EQ(parse(json{{"format", nullptr}}), nullptr);
  EXPECT_EQ(parse(json{{"format", ""}}), nullptr);
  EXPECT_NE(parse(json{{"format", "json"}}), nullptr);
  EXPECT_NE(parse(json{{"format", kPerson}}), nullptr);
  EXPECT_NE(parse(json{{"format", kPerson.dump()}}), nullptr);  // the text form the server sends
  // Without the raw body the object form still works (keys in sorted order).
  EXPECT_NE(parse_completion(json{{"prompt", "x"}, {"format", kPerson}}, tok).gen.format, nullptr);
}

TEST(JsonParamsFormat, ErrorsNameTheFieldAndTheProblem) {
  const Tokenizer& tok = tokenizer();
  auto err = [&](const std::string& body) {
    return error_of([&] { parse_completion(json::parse(body), tok, body); });
  };
  EXPECT_NE(err(R"({"prompt": "x", "format": 42})").find("field 'format' must be \"json\" or a JSON schema"),
            std::string::npos);
  EXPECT_NE(err(R"({"prompt": "x", "format": "xml"})").find("got \"xml\""), std::string::npos);
  EXPECT_NE(err(R"({"prompt": "x", "format": ["json"]})").find("field 'format'"), std::string::npos);
  EXPECT_NE(err(R"({"prompt": "x", "format": "{\"type\": "})").find("malformed"), std::string::npos);
  const std::string pattern = err(R"({"prompt": "x", "format": {"type": "string", "pattern": "a+"}})");
  EXPECT_NE(pattern.find("field 'format': "), std::string::npos) << pattern;
  EXPECT_NE(pattern.find("'pattern'"), std::string::npos) << pattern;
  EXPECT_NE(err(R"({"prompt": "x", "format": {"type": "bogus"}})").find("bogus"), std::string::npos);
}

TEST(RunnerFormat, SchemaOutputValidatesStreamedAndNot) {
  REQUIRE_STORIES();
  auto r = RunnerProcess::start(kStories, {"--parallel", "2", "--ctx-size", "1024"});
  for (bool stream : {false, true}) {
    Completion c = complete(r->url(), json{{"prompt", "Once upon a time"}, {"n_predict", 300}, {"temperature", 0},
                                           {"stream", stream}, {"format", kPerson}});
    ASSERT_EQ(c.status, 200) << c.final;
    EXPECT_EQ(c.final["done_reason"], "stop") << c.content;
    json value = json::parse(c.content, nullptr, false);
    ASSERT_FALSE(value.is_discarded()) << c.content;
    EXPECT_EQ(schema_problem(value, kPerson), "") << c.content;
    EXPECT_EQ(c.final["timings"]["predicted_n"], static_cast<int>(c.tokens.size()));
  }
}

TEST(RunnerFormat, PropertiesComeInTheSchemasOrder) {
  REQUIRE_STORIES();
  auto r = RunnerProcess::start(kStories, {"--parallel", "1", "--ctx-size", "512"});
  httplib::Client c = r->client();
  // Written by hand so that "zeta" comes before "alpha" in the request's text.
  const std::string schema =
      R"({"type": "object", "properties": {"zeta": {"const": 1}, "alpha": {"const": 2}}, "required": ["zeta", "alpha"]})";
  for (const std::string& format : {schema, json(schema).dump()}) {  // the object, then its text form
    HttpResult res = post_raw(
        c, "/completion", R"({"prompt": "Once", "n_predict": 50, "temperature": 0, "format": )" + format + "}");
    ASSERT_EQ(res.status, 200) << res.text;
    const std::string content = res.body["content"].get<std::string>();
    EXPECT_EQ(json::parse(content), json::parse(R"({"zeta": 1, "alpha": 2})"));
    EXPECT_LT(content.find("zeta"), content.find("alpha")) << content;
  }
}

TEST(RunnerFormat, BadFormatsAre400) {
  REQUIRE_STORIES();
  auto r = RunnerProcess::start(kStories, {"--parallel", "1", "--ctx-size", "256"});
  httplib::Client c = r->client();
  auto expect_400 = [&](const std::string& body, const std::string& words) {
    HttpResult res = post_raw(c, "/completion", body);
    EXPECT_EQ(res.status, 400) << body << " -> " << res.text;
    ASSERT_TRUE(res.body.is_object() && res.body.contains("error")) << res.text;
    EXPECT_NE(res.body["error"].get<std::string>().find(words), std::string::npos) << res.body["error"];
  };
  expect_400(R"({"prompt": "x", "format": {"type": "string", "pattern": "^a"}})", "'pattern'");
  expect_400(R"({"prompt": "x", "format": {"$ref": "http://example.com/s.json"}})", "$ref");
  expect_400(R"({"prompt": "x", "format": {"type": "object", "required": "a"}})", "required");
  expect_400(R"({"prompt": "x", "format": {"type": "strin"}})", "strin");
  expect_400(R"({"prompt": "x", "format": 1})", "field 'format'");
  expect_400(R"({"prompt": "x", "format": "yaml", "stream": true})", "field 'format'");
  // Still serving.
  EXPECT_EQ(complete(r->url(), json{{"prompt", "Once"}, {"n_predict", 20}, {"temperature", 0}, {"format", "json"}})
                .status,
            200);
}
