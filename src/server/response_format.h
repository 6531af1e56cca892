// Structured output requests: Ollama's `format` and OpenAI's `response_format`,
// checked and turned into the runner's `format`.
//
// The schema is compiled here too (grammar::compile_format caches by the
// schema's text), so a schema we cannot enforce is a 400 before any runner is
// loaded. Properties are generated in the order the request lists them; since
// nlohmann::json sorts object keys, the schema is read again from the raw body
// as an ordered_json and passed on as its JSON text, which the runner accepts.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace pl::server {

// What the runner's "format" gets: null (none), "json", or a schema object's JSON text.
using RunnerFormat = nlohmann::json;

// Ollama's "format": "json", a JSON schema object, or absent / null / "" for
// none. Anything else, or a schema that does not compile, throws pl::Error
// naming the field. raw_body: the request's text (body is its parse).
RunnerFormat ollama_format(const nlohmann::json& body, const std::string& raw_body);

// OpenAI's "response_format": {"type": "text"} (none), {"type": "json_object"}
// ("json": any JSON object), or {"type": "json_schema", "json_schema": {"name",
// "schema", "strict"?, "description"?}} (the schema; strict or not, it is always
// enforced). Malformed or unsupported shapes throw pl::Error naming the element.
RunnerFormat openai_response_format(const nlohmann::json& body, const std::string& raw_body);

}  // namespace pl::server
