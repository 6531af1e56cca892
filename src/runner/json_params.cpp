#include "runner/json_params.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <memory>
#include <string_view>

#include "core/error.h"
#include "grammar/grammar.h"
#include "tokenizer/tokenizer.h"

namespace pl::runner {

using nlohmann::json;

using http::field;
using http::get_bool;
using http::type_of;

namespace {

float get_float(const json& body, const char* name, float def) {
  const json* v = field(body, name);
  if (v == nullptr) return def;
  if (!v->is_number()) fail("field '{}' must be a number, got {}", name, type_of(*v));
  const double d = v->get<double>();
  if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max())
    fail("field '{}' is out of range: {}", name, v->dump());
  return static_cast<float>(d);
}

// A JSON integer (or a float with an integral value, as some clients send) in [lo, hi].
int64_t as_int(const json& v, const std::string& what, int64_t lo, int64_t hi) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
      fail("{} is out of range: {}", what, v.dump());
    const int64_t i = v.get<int64_t>();
    if (i < lo || i > hi) fail("{} is out of range: {}", what, i);
    return i;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d)) {
      if (d < static_cast<double>(lo) || d > static_cast<double>(hi)) fail("{} is out of range: {}", what, v.dump());
      return static_cast<int64_t>(d);
    }
  }
  fail("{} must be an integer, got {}", what, v.is_number() ? v.dump() : type_of(v));
}

int get_int(const json& body, const char* name, int def) {
  const json* v = field(body, name);
  if (v == nullptr) return def;
  return static_cast<int>(as_int(*v, fmt::format("field '{}'", name), std::numeric_limits<int>::min(),
                                 std::numeric_limits<int>::max()));
}

std::vector<int32_t> get_ids(const json& v, const std::string& what) {
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    ids.push_back(static_cast<int32_t>(as_int(v[i], fmt::format("{}[{}]", what, i),
                                              std::numeric_limits<int32_t>::min(),
                                              std::numeric_limits<int32_t>::max())));
  return ids;
}

const std::string& get_required_string(const json& body, const char* name) {
  const json* v = field(body, name);
  if (v == nullptr) fail("missing field '{}'", name);
  if (!v->is_string()) fail("field '{}' must be a string, got {}", name, type_of(*v));
  return v->get_ref<const std::string&>();
}

SamplingParams parse_sampling(const json& body) {
  SamplingParams s;
  s.temperature = get_float(body, "temperature", s.temperature);
  s.top_k = get_int(body, "top_k", s.top_k);
  s.top_p = get_float(body, "top_p", s.top_p);
  s.min_p = get_float(body, "min_p", s.min_p);
  s.repeat_penalty = get_float(body, "repeat_penalty", s.repeat_penalty);
  s.repeat_last_n = get_int(body, "repeat_last_n", s.repeat_last_n);
  s.presence_penalty = get_float(body, "presence_penalty", s.presence_penalty);
  s.frequency_penalty = get_float(body, "frequency_penalty", s.frequency_penalty);
  if (const json* v = field(body, "seed")) {
    // A negative seed asks for a random one, as Ollama's -1 does.
    const int64_t seed = as_int(*v, "field 'seed'", std::numeric_limits<int64_t>::min(),
                                std::numeric_limits<int64_t>::max());
    if (seed >= 0) s.seed = static_cast<uint64_t>(seed);
  }
  return s;
}

std::vector<std::string> parse_stop(const json& body) {
  std::vector<std::string> stops;
  const json* v = field(body, "stop");
  if (v == nullptr) return stops;
  auto add = [&](const json& s, const std::string& what) {
    if (!s.is_string()) fail("{} must be a string, got {}", what, type_of(s));
    // An empty stop string would end every generation before its first token: it means nothing.
    if (!s.get_ref<const std::string&>().empty()) stops.push_back(s.get<std::string>());
  };
  if (v->is_string()) {
    add(*v, "field 'stop'");
  } else if (v->is_array()) {
    for (size_t i = 0; i < v->size(); ++i) add((*v)[i], fmt::format("field 'stop'[{}]", i));
  } else {
    fail("field 'stop' must be an array of strings, got {}", type_of(*v));
  }
  return stops;
}

// "format": "json", a JSON schema object (its property order taken from the
// raw body when given, since json sorts keys), the text of a schema object (how
// the server sends one, so that its order survives), or absent / null / "".
std::shared_ptr<const grammar::Format> parse_format(const json& body, std::string_view raw_body) {
  const json* v = field(body, "format");
  if (v == nullptr) return nullptr;
  auto bad = [&] {
    if (v->is_string())
      fail("field 'format' must be \"json\" or a JSON schema object, got \"{}\"", v->get_ref<const std::string&>());
    fail("field 'format' must be \"json\" or a JSON schema object, got {}", type_of(*v));
  };
  try {
    if (v->is_string()) {
      const std::string& s = v->get_ref<const std::string&>();
      if (s.empty()) return nullptr;
      if (s == "json") return grammar::compile_format(*v);
      const size_t first = s.find_first_not_of(" \t\r\n");
      if (first == std::string::npos || s[first] != '{') bad();
      auto schema = nlohmann::ordered_json::parse(s, nullptr, false);
      if (schema.is_discarded() || !schema.is_object()) fail("field 'format' holds malformed JSON schema text");
      return grammar::compile_format_ordered(schema);
    }
    if (!v->is_object()) bad();
    if (!raw_body.empty()) {
      auto whole = nlohmann::ordered_json::parse(raw_body, nullptr, false);
      if (whole.is_object() && whole.contains("format") && whole["format"].is_object())
        return grammar::compile_format_ordered(whole["format"]);
    }
    return grammar::compile_format(*v);
  } catch (const Error& e) {
    // The grammar's messages begin "format: " already.
    std::string_view what = e.what();
    if (what.starts_with("field 'format'")) throw;
    if (what.starts_with("format: ")) what.remove_prefix(8);
    fail("field 'format': {}", what);
  }
}

}  // namespace

CompletionParams parse_completion(const json& body, const Tokenizer& tok, std::string_view raw_body) {
  CompletionParams p;
  const bool add_special = get_bool(body, "add_special", true);
  const bool parse_special = get_bool(body, "parse_special", true);
  const json* prompt = field(body, "prompt");
  if (prompt == nullptr) fail("missing field 'prompt'");
  if (prompt->is_string()) {
    p.gen.prompt = tok.encode(prompt->get_ref<const std::string&>(), add_special, parse_special);
  } else if (prompt->is_array()) {
    p.gen.prompt = get_ids(*prompt, "field 'prompt'");
  } else {
    fail("field 'prompt' must be a string or an array of token ids, got {}", type_of(*prompt));
  }
  p.gen.n_predict = get_int(body, "n_predict", -1);
  if (p.gen.n_predict < -1) fail("field 'n_predict' must be -1 (no limit) or a count >= 0, got {}", p.gen.n_predict);
  p.gen.n_ctx = get_int(body, "n_ctx", 0);
  if (p.gen.n_ctx < 0) fail("field 'n_ctx' must be 0 (the runner's) or a positive count, got {}", p.gen.n_ctx);
  p.gen.truncate = get_bool(body, "truncate", false);
  p.gen.sampling = parse_sampling(body);
  p.gen.stop = parse_stop(body);
  p.gen.format = parse_format(body, raw_body);
  p.stream = get_bool(body, "stream", false);
  return p;
}

std::vector<int32_t> parse_tokenize(const json& body, const Tokenizer& tok) {
  const std::string& text = get_required_string(body, "content");
  return tok.encode(text, get_bool(body, "add_special", false), get_bool(body, "parse_special", true));
}

std::vector<int32_t> parse_detokenize(const json& body) {
  const json* v = field(body, "tokens");
  if (v == nullptr) fail("missing field 'tokens'");
  if (!v->is_array()) fail("field 'tokens' must be an array of token ids, got {}", type_of(*v));
  return get_ids(*v, "field 'tokens'");
}

EmbeddingParams parse_embedding(const json& body, const Tokenizer& tok) {
  const char* name = field(body, "content") != nullptr ? "content" : "input";
  const json* v = field(body, name);
  if (v == nullptr) fail("missing field 'content' (or 'input')");
  const bool add_special = get_bool(body, "add_special", true);
  const bool parse_special = get_bool(body, "parse_special", true);
  EmbeddingParams p;
  p.n_ctx = get_int(body, "n_ctx", 0);
  if (p.n_ctx < 0) fail("field 'n_ctx' must be 0 (the runner's) or a positive count, got {}", p.n_ctx);
  p.truncate = get_bool(body, "truncate", false);
  if (v->is_string()) {
    p.prompts.push_back(tok.encode(v->get_ref<const std::string&>(), add_special, parse_special));
  } else if (v->is_array()) {
    if (v->empty()) fail("field '{}' is an empty array", name);
    p.batch = true;
    for (size_t i = 0; i < v->size(); ++i) {
      const json& s = (*v)[i];
      if (!s.is_string()) fail("field '{}'[{}] must be a string, got {}", name, i, type_of(s));
      p.prompts.push_back(tok.encode(s.get_ref<const std::string&>(), add_special, parse_special));
    }
  } else {
    fail("field '{}' must be a string or an array of strings, got {}", name, type_of(*v));
  }
  return p;
}

int parse_parallel(const json& body) {
  const json* v = field(body, "n");
  if (v == nullptr) fail("missing field 'n'");
  return static_cast<int>(
      as_int(*v, "field 'n'", std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
}

}  // namespace pl::runner
