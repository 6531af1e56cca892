// Random walks: from many seeds, generate byte by byte whatever the format
// allows until it must (or may, and chooses to) end; the text must parse as
// JSON and pass the independent validator.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "grammar_test_util.h"

namespace pl::grammartest {
namespace {

struct WalkCase {
  const char* name;
  const char* schema;
};

const std::vector<WalkCase>& walk_cases() {
  static const std::vector<WalkCase> c = {
      {"json", "json"},
      {"any", "{}"},
      {"nested_objects",
       R"({"type": "object", "properties": {
            "person": {"type": "object", "properties": {"name": {"type": "string", "minLength": 1},
                       "age": {"type": "integer", "minimum": 0}, "email": {"type": "string", "format": "email"}},
                       "required": ["name", "age"]},
            "active": {"type": "boolean"}, "score": {"type": ["number", "null"]}},
          "required": ["person"]})"},
      {"arrays",
       R"({"type": "array", "items": {"type": "array", "items": {"type": "integer"}, "maxItems": 3}, "minItems": 1,
           "maxItems": 4})"},
      {"tuple", R"({"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}],
                    "items": false, "minItems": 2})"},
      {"enums", R"({"type": "object", "properties": {"color": {"enum": ["red", "green", "blue", "reddish"]},
                    "size": {"enum": [1, 2, 3, null]}, "c": {"const": {"k": [true]}}},
                    "required": ["color", "size", "c"]})"},
      {"any_of", R"({"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"},
                    {"type": "integer"}, {"type": "object", "properties": {"t": {"type": "string", "format": "time"}},
                    "required": ["t"]}, {"type": "string", "format": "uuid"}]})"},
      {"recursive_tree",
       R"({"$defs": {"node": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8},
            "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}, "required": ["name"]}},
          "$ref": "#/$defs/node"})"},
      {"recursive_root", R"({"type": "object", "properties": {"v": {"type": "integer"},
                           "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}}, "required": ["v", "next"]})"},
      {"optional_props", R"({"type": "object", "properties": {"a": {"type": "string"}, "ab": {"type": "integer"},
                           "abc": {"type": "boolean"}, "b": {"type": "null"}, "z": {"type": "number"}},
                           "required": ["z"]})"},
      {"additional", R"({"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string",
                        "minLength": 1, "maxLength": 3}}})"},
      {"all_of", R"({"allOf": [{"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
                    {"properties": {"label": {"type": "string"}}, "required": ["label"]}]})"},
  };
  return c;
}

class Walks : public ::testing::TestWithParam<WalkCase> {};

TEST_P(Walks, RandomTextsValidate) {
  const std::string s = GetParam().schema;
  const json f = s == "json" ? json("json") : json::parse(s);
  for (uint32_t seed = 1; seed <= 150; ++seed) {
    const std::string text = random_walk_bytes(f, seed, 10 + seed % 60);
    expect_valid(f, text);
    if (HasFailure()) {
      ADD_FAILURE() << "seed " << seed;
      return;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Grammar, Walks, ::testing::ValuesIn(walk_cases()),
                         [](const ::testing::TestParamInfo<WalkCase>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace pl::grammartest
