// Structured output: constrained sampling so that generated text always parses
// as JSON and validates against a JSON schema (Ollama's `format`, OpenAI's
// `response_format`).
//
// Three parts, each built once and shared:
//   Format       a compiled grammar (from "json" or a JSON schema), immutable,
//                cached by the canonical text of its source;
//   TokenTable   every token's bytes arranged as a trie, built once per model;
//   Constraint   one per sequence: the parse state of the text generated so far.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace pl {

class Tokenizer;

namespace grammar {

class Format;      // compiled grammar (opaque)
class TokenTable;  // the vocabulary's bytes as a trie (opaque)

// `format` is the string "json" (any JSON value; Ollama/OpenAI json_object: an
// object) or a JSON schema object. Throws pl::Error naming what is unsupported
// or malformed. Results are cached (thread-safe) by the schema's canonical dump,
// so eight requests with the same schema compile it once.
//
// "json" produces a JSON *object* at the top level (like Ollama/llama.cpp);
// a schema `{}` or `true` allows any JSON value. Whitespace is restricted to at
// most one optional space after ':' and ','; nothing before or after the root
// value. Errors read like `format: JSON schema keyword 'pattern' (at
// #/properties/x) is not supported`. Supported keywords: see grammar/schema.h.
//
// nlohmann::json keeps object keys sorted, so with compile_format properties
// are generated in alphabetical order; compile_format_ordered takes an
// ordered_json (from nlohmann::ordered_json::parse of the request body) and
// keeps the schema's own property order, which models follow better.
std::shared_ptr<const Format> compile_format(const nlohmann::json& format);
std::shared_ptr<const Format> compile_format_ordered(const nlohmann::ordered_json& format);

// The bytes each token stands for when generated (SPM "▁" -> space, <0xNN>
// byte tokens, GPT-2 byte-level BPE mapping undone); control/special tokens
// have no bytes and are never allowed inside structured output. End-of-generation
// ids are remembered: they are allowed exactly when the text is complete.
std::shared_ptr<const TokenTable> make_token_table(const Tokenizer& tok);

// One per sequence; not thread-safe (mask/allows use scratch space inside),
// but different Constraints may be used from different threads at once.
class Constraint {
 public:
  Constraint(std::shared_ptr<const Format> format, std::shared_ptr<const TokenTable> table);
  ~Constraint();
  Constraint(Constraint&&) noexcept;
  Constraint& operator=(Constraint&&) noexcept;

  // Would generating `token` keep the text a valid prefix (or, for an
  // end-of-generation token, is the text complete)? Cheap: the sampler's fast path.
  bool allows(int32_t token) const;

  // Sets logits[id] = -inf for every token not allowed next. logits: [n_vocab]
  // (entries past the tokenizer's vocabulary, e.g. padded output rows, are
  // always masked). The first masks at a new grammar position also fill a
  // per-(format, vocabulary) cache: a few ms once, then well under 1 ms.
  // The walk over the vocabulary trie prunes whole subtrees at the first byte
  // the grammar rejects.
  void mask(std::span<float> logits) const;

  // Commits a sampled token (must be allowed: a token that is not throws
  // pl::Error and leaves the state unchanged). End-of-generation tokens mark done.
  void accept(int32_t token);

  // The text is a complete value and nothing more may follow (the sampler must
  // then end the sequence).
  bool must_end() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace grammar
}  // namespace pl
