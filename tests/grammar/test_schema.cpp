// Each schema feature: texts that must be accepted and texts that must be
// rejected, fed byte by byte through a Constraint over a byte-per-token table.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "grammar/schema.h"
#include "grammar_test_util.h"
#include "test_util.h"

namespace pl::grammartest {
namespace {

struct Case {
  const char* name;
  const char* schema;  // JSON text, or "json"
  std::vector<std::string> good;
  std::vector<std::string> bad;
};

json fmt_of(const char* schema) { return std::string(schema) == "json" ? json("json") : json::parse(schema); }

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"json_object", "json",
       {"{}", R"({"a": 1})", R"({"a":[1, 2.5e-3, "x", true, false, null, {}]})", R"({"k": {"n": {"m": []}}})",
        R"({"u": "\u00e9\ud83d\ude00"})"},
       {"[]", "1", "\"s\"", " {}", "{} ", "{ }", R"({"a":  1})", R"({"a" : 1})", "{\"a\":1,}", "{\"a\"}",
        R"({"a": 01})", R"({"a": 1.})", R"({"a": "\ud800"})", R"({"a": "\x"})", "{\"a\": \"\x01\"}", "{\"a\":tru}"}},
      {"any_value", "{}", {"1", "\"s\"", "[1, {}]", "null", "-0.5E+10", "{\"a\": {}}"}, {"", "01", "+1", ".5", "[1,]"}},
      {"string", R"({"type": "string"})",
       {"\"\"", "\"abc\"", R"("a\"b\\c\/\b\f\n\r\t")", "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"", R"("\u0041")"},
       {"abc", "\"abc", "\"a\"b\"", "\"\t\"", "\"\xC3\"", "\"\xC0\xAF\"", "\"\xED\xA0\x80\"", "\"\xF4\x90\x80\x80\"",
        "1"}},
      {"number", R"({"type": "number"})", {"0", "-0", "12", "1.5", "-1.25e10", "3E-2", "1e+5"},
       {"01", "1.", ".1", "1e", "--1", "+1", "0x1", "\"1\""}},
      {"integer", R"({"type": "integer"})", {"0", "-7", "123456789"}, {"1.0", "1e3", "00", "-"}},
      {"integer_nonneg", R"({"type": "integer", "minimum": 0, "maximum": 10})", {"0", "5", "1000"}, {"-1", "-0"}},
      {"boolean_null", R"({"type": ["boolean", "null"]})", {"true", "false", "null"}, {"1", "\"true\"", "nul", "True"}},
      {"type_array", R"({"type": ["string", "integer"], "maxLength": 2})", {"\"ab\"", "12", "-3"},
       {"\"abc\"", "1.5", "null"}},
      {"object_props",
       R"({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
           "tags": {"type": "array", "items": {"type": "string"}}}, "required": ["name", "age"]})",
       // nlohmann::json sorts keys: the order is age, name, tags.
       {R"({"age": 3, "name": "a"})", R"({"age":3,"name":"a","tags":[]})", R"({"age": 3, "name": "a", "tags": ["x", "y"]})"},
       {R"({"name": "a", "age": 3})", R"({"name": "a"})", R"({"age": 3, "name": "a", "x": 1})", "{}",
        R"({"age": "3", "name": "a"})", R"({"age": 3, "name": "a", "tags": [1]})"}},
      {"object_all_optional",
       R"({"properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}}})",
       {"{}", R"({"a": 1})", R"({"b": 1})", R"({"c": 1})", R"({"a": 1, "c": 2})", R"({"a": 1, "b": 2, "c": 3})"},
       {R"({"b": 1, "a": 2})", R"({"a": 1,})", R"({, "a": 1})", R"({"a": 1, "a": 2})", R"({"d": 1})"}},
      {"additional_true", R"({"type": "object", "additionalProperties": true})", {"{}", R"({"x": [1], "y": null})"},
       {"[]", R"({"x"})"}},
      {"additional_schema", R"({"type": "object", "additionalProperties": {"type": "integer"}})",
       {"{}", R"({"x": 1, "y": 2})"}, {R"({"x": "1"})"}},
      {"additional_with_props",
       R"({"properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": {"type": "boolean"}})",
       {R"({"a": 1})", R"({"a": 1, "z": true})"}, {R"({"z": true})", R"({"a": 1, "z": 1})"}},
      {"empty_object", R"({"type": "object", "additionalProperties": false})", {"{}"}, {R"({"a": 1})"}},
      {"enum", R"({"enum": ["red", "green", 3, null, {"a": [1]}]})",
       {"\"red\"", "\"green\"", "3", "null", R"({"a":[1]})"}, {"\"blue\"", "\"re\"", "30", R"({"a": [1]})"}},
      {"const", R"({"const": "fixed"})", {"\"fixed\""}, {"\"fixe\"", "\"fixed \""}},
      {"any_of", R"({"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 1}]})", {"5", "\"a\""},
       {"\"ab\"", "true"}},
      {"one_of_objects",
       R"({"oneOf": [{"properties": {"kind": {"const": "a"}, "x": {"type": "integer"}}, "required": ["kind", "x"]},
                     {"properties": {"kind": {"const": "b"}, "y": {"type": "string"}}, "required": ["kind", "y"]}]})",
       {R"({"kind": "a", "x": 1})", R"({"kind": "b", "y": "s"})"}, {R"({"kind": "a", "y": "s"})"}},
      {"all_of",
       R"({"allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]},
                     {"properties": {"b": {"type": "string"}}, "required": ["b"]}]})",
       {R"({"a": 1, "b": "x"})"}, {R"({"a": 1})", R"({"b": "x"})"}},
      {"items_bounds", R"({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3})",
       {"[1, 2]", "[1,2,3]"}, {"[]", "[1]", "[1, 2, 3, 4]", "[1, \"a\"]"}},
      {"prefix_items", R"({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false})",
       {"[\"a\", 1]", "[\"a\"]", "[]"}, {"[1]", "[\"a\", 1, 2]", "[\"a\", \"b\"]"}},
      {"prefix_then_items",
       R"({"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "boolean"}, "minItems": 2})",
       {"[\"a\", true]", "[\"a\", true, false]"}, {"[\"a\"]", "[\"a\", 1]"}},
      {"string_length", R"({"type": "string", "minLength": 2, "maxLength": 3})",
       {"\"ab\"", "\"abc\"", "\"\xC3\xA9\xC3\xA9\"", R"("\n\t")"}, {"\"a\"", "\"abcd\"", "\"\""}},
      {"format_date", R"({"type": "string", "format": "date"})", {"\"2024-02-29\"", "\"1999-12-31\""},
       {"\"2024-13-01\"", "\"2024-00-10\"", "\"2024-01-32\"", "\"24-01-01\"", "\"2024-1-01\""}},
      {"format_time", R"({"type": "string", "format": "time"})",
       {"\"23:59:60Z\"", "\"08:30:00.123+02:00\"", "\"00:00:00-11:30\""}, {"\"24:00:00Z\"", "\"12:00:00\"", "\"12:60:00Z\""}},
      {"format_date_time", R"({"type": "string", "format": "date-time"})", {"\"2024-05-06T07:08:09Z\""},
       {"\"2024-05-06 07:08:09Z\"", "\"2024-05-06\""}},
      {"format_uuid", R"({"type": "string", "format": "uuid"})", {"\"123e4567-e89b-12d3-A456-426614174000\""},
       {"\"123e4567e89b12d3a456426614174000\"", "\"123e4567-e89b-12d3-a456-42661417400g\""}},
      {"format_other", R"({"type": "string", "format": "email"})", {"\"anything\""}, {"1"}},
      {"nullable", R"({"type": "integer", "nullable": true})", {"1", "null"}, {"\"x\""}},
      {"ref_defs",
       R"({"$defs": {"pos": {"type": "integer", "minimum": 0}}, "type": "object",
           "properties": {"x": {"$ref": "#/$defs/pos"}, "y": {"$ref": "#/definitions/neg"}},
           "definitions": {"neg": {"type": "string"}}, "required": ["x", "y"]})",
       {R"({"x": 1, "y": "n"})"}, {R"({"x": -1, "y": "n"})", R"({"x": 1, "y": 2})"}},
      {"ref_recursive",
       R"({"type": "object", "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#"}}},
           "required": ["v"]})",
       {R"({"v": 1})", R"({"kids": [{"kids": [{"v": 3}], "v": 2}, {"v": 4}], "v": 1})"},
       {R"({"kids": [{}], "v": 1})", R"({"kids": [1], "v": 1})"}},
      {"ref_with_siblings",
       R"({"$defs": {"o": {"properties": {"a": {"type": "integer"}}}}, "$ref": "#/$defs/o", "required": ["a"],
           "description": "x"})",
       {R"({"a": 1})"}, {"{}"}},
      {"annotations_ignored",
       R"({"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "T", "description": "D",
           "examples": [1], "default": 2, "type": "integer"})",
       {"1"}, {"\"x\""}},
      {"required_without_properties", R"({"type": "object", "required": ["id"]})", {R"({"id": [1]})"}, {"{}"}},
  };
  return c;
}

class SchemaCases : public ::testing::TestWithParam<Case> {};

TEST_P(SchemaCases, AcceptsValidRejectsInvalid) {
  const Case& c = GetParam();
  const json f = fmt_of(c.schema);
  for (const std::string& g : c.good) EXPECT_TRUE(accepts(f, g)) << "should accept: " << g;
  for (const std::string& b : c.bad) EXPECT_FALSE(accepts(f, b)) << "should reject: " << b;
  // And what the grammar accepts, the independent validator accepts.
  for (const std::string& g : c.good) {
    if (accepts(f, g)) expect_valid(f, g);
  }
}

INSTANTIATE_TEST_SUITE_P(Grammar, SchemaCases, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

TEST(Schema, PropertiesFollowSchemaOrderWithOrderedJson) {
  const auto f = nlohmann::ordered_json::parse(
      R"({"properties": {"zeta": {"type": "integer"}, "alpha": {"type": "integer"}}, "required": ["zeta", "alpha"]})");
  Constraint c(grammar::compile_format_ordered(f), byte_table());
  for (char ch : std::string(R"({"zeta": 1, "alpha": 2})")) {
    ASSERT_TRUE(c.allows(static_cast<unsigned char>(ch))) << ch;
    c.accept(static_cast<unsigned char>(ch));
  }
  EXPECT_TRUE(c.must_end());
  // The plain json overload sees sorted keys.
  EXPECT_TRUE(accepts(json::parse(f.dump()), R"({"alpha": 2, "zeta": 1})"));
}

TEST(Schema, MustEndAfterRootValue) {
  Constraint c(grammar::compile_format(json("json")), byte_table());
  EXPECT_FALSE(c.must_end());
  EXPECT_FALSE(c.allows(kByteEog));
  for (char ch : std::string("{}")) c.accept(static_cast<unsigned char>(ch));
  EXPECT_TRUE(c.must_end());
  EXPECT_TRUE(c.allows(kByteEog));
  for (int b = 0; b < 256; ++b) EXPECT_FALSE(c.allows(b)) << b;
  c.accept(kByteEog);
  EXPECT_TRUE(c.must_end());
  EXPECT_FALSE(c.allows(kByteEog));
}

TEST(Schema, NumberAtRootCanEndButNeedNot) {
  Constraint c(grammar::compile_format(json::parse(R"({"type": "integer"})")), byte_table());
  c.accept('4');
  EXPECT_TRUE(c.allows(kByteEog));
  EXPECT_FALSE(c.must_end());
  EXPECT_TRUE(c.allows('2'));
}

TEST(Schema, AcceptOfDisallowedTokenThrows) {
  Constraint c(grammar::compile_format(json("json")), byte_table());
  const std::string msg = test::error_of([&] { c.accept('x'); });
  EXPECT_NE(msg.find("not allowed"), std::string::npos) << msg;
  c.accept('{');  // state unchanged by the failed accept
}

struct ErrCase {
  const char* schema;
  const char* needle;
};

TEST(Schema, ErrorsNameTheKeyword) {
  const std::vector<ErrCase> errs = {
      {R"({"type": "string", "pattern": "^a+$"})", "'pattern'"},
      {R"({"not": {"type": "string"}})", "'not'"},
      {R"({"properties": {"a": {"if": {}, "then": {}}}})", "'if'"},
      {R"({"type": "array", "contains": {"type": "integer"}})", "'contains'"},
      {R"({"patternProperties": {"^x": {}}})", "'patternProperties'"},
      {R"({"type": "object", "minProperties": 1})", "'minProperties'"},
      {R"({"type": "strin"})", "unknown type 'strin'"},
      {R"({"type": 3})", "'type'"},
      {R"({"$ref": "#/$defs/missing"})", "#/$defs/missing"},
      {R"({"$ref": "http://example.com/s.json"})", "local $ref"},
      {R"({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"})", "left-recursive"},
      {R"({"enum": []})", "'enum'"},
      {R"({"anyOf": []})", "'anyOf'"},
      {R"({"type": "array", "minItems": 3, "maxItems": 2})", "minItems"},
      {R"({"type": "string", "minLength": -1})", "'minLength'"},
      {R"({"type": "string", "maxLength": 5000000})", "symbols"},
      {R"({"properties": {"a": false}, "required": ["a"]})", "false"},
      {R"([1, 2])", "JSON schema object"},
      {R"("yaml")", "\"json\""},
  };
  for (const ErrCase& e : errs) {
    const std::string msg = test::error_of([&] { grammar::compile_format(json::parse(e.schema)); });
    EXPECT_NE(msg.find(e.needle), std::string::npos) << e.schema << " -> " << msg;
  }
}

TEST(Schema, CacheReturnsSamePointer) {
  const json a = json::parse(R"({"type": "object", "properties": {"x": {"type": "integer"}}})");
  const json b = json::parse(R"({"properties": {"x": {"type": "integer"}}, "type": "object"})");  // same canonical dump
  const auto fa = grammar::compile_format(a);
  EXPECT_EQ(fa.get(), grammar::compile_format(b).get());
  EXPECT_EQ(grammar::compile_format(json("json")).get(), grammar::compile_format(json("json")).get());
  EXPECT_NE(fa.get(), grammar::compile_format(json("json")).get());
}

TEST(Schema, CacheIsBounded) {
  const auto first = grammar::compile_format(json::parse(R"({"const": "first"})"));
  for (int i = 0; i < 100; ++i) grammar::compile_format(json{{"const", i}});
  // Evicted from the cache (but still alive through our pointer): a new compile gives a new object.
  EXPECT_NE(first.get(), grammar::compile_format(json::parse(R"({"const": "first"})")).get());
}

TEST(Schema, WhitespaceAtMostOneSpace) {
  const json f = "json";
  EXPECT_TRUE(accepts(f, R"({"a":1,"b":2})"));
  EXPECT_TRUE(accepts(f, R"({"a": 1, "b": 2})"));
  EXPECT_FALSE(accepts(f, R"({"a":  1})"));
  EXPECT_FALSE(accepts(f, "{\"a\":\n1}"));
  EXPECT_FALSE(accepts(f, R"({"a": [1 ,2]})"));
}

}  // namespace
}  // namespace pl::grammartest
