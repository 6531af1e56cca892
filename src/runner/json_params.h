// Request bodies of the runner's HTTP API, parsed into engine requests.
//
// Every function throws pl::Error with a message that names the field and says
// what is wrong ("field 'top_k' must be an integer, got string"); the server
// turns that into 400 {"error": ...}. A field that is absent or null takes its
// default (sampling defaults are Ollama's, from SamplingParams); unknown fields
// are ignored. Value checks that the engine owns (empty prompt, prompt longer
// than the context, token ids outside the vocabulary, sampling ranges) are left
// to Engine::submit so the messages come from one place.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"
#include "http/json_body.h"

namespace pl {
class Tokenizer;
}

namespace pl::runner {

// Parses a request body: it must be a JSON object (shared with the server).
using http::parse_body;

// POST /completion
struct CompletionParams {
  GenerateRequest gen;  // prompt tokenized, sampling, n_predict, stop strings
  bool stream = false;
};
// "prompt" is a string (tokenized with add_special, default true: BOS as the
// tokenizer metadata says; parse_special, default true) or an array of token
// ids, taken as they are (add_special does not apply to ids).
// "format" (structured output, as Ollama's runner takes it): "json", a JSON
// schema object, or a string holding a schema object's JSON text; compiled here
// (a schema that does not compile is a pl::Error naming the problem); absent,
// null or "" for none. Properties are generated in the schema's order: raw_body
// (the request's text) gives the order of an object schema, since nlohmann::json
// sorts keys; the text form keeps its own order (the server sends that form).
CompletionParams parse_completion(const nlohmann::json& body, const Tokenizer& tok,
                                  std::string_view raw_body = {});

// POST /tokenize {"content", "add_special" (default false), "parse_special" (default true)}
std::vector<int32_t> parse_tokenize(const nlohmann::json& body, const Tokenizer& tok);

// POST /detokenize {"tokens": [ids]}
std::vector<int32_t> parse_detokenize(const nlohmann::json& body);

// POST /embedding {"content" or "input": a string or an array of strings,
// "add_special" (default true), "parse_special" (default true)}.
struct EmbeddingParams {
  std::vector<std::vector<int32_t>> prompts;  // one per input
  bool batch = false;                         // the input was an array: answer {"embeddings": [...]}
  int n_ctx = 0;                              // "n_ctx": context limit per input (0: the runner's)
  bool truncate = false;                      // "truncate": cut inputs that do not fit instead of failing
};
EmbeddingParams parse_embedding(const nlohmann::json& body, const Tokenizer& tok);

// POST /parallel {"n": K}: K as given (range checks belong to the server, which knows the KV pool).
int parse_parallel(const nlohmann::json& body);

}  // namespace pl::runner
