// Helpers for the grammar tests: a byte-per-token table, whole-text matching,
// random walks, and a small JSON-schema validator written independently of the
// compiler (it checks values, the compiler builds grammars).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "grammar/grammar.h"
#include "grammar/token_table.h"

namespace pl::grammartest {

using json = nlohmann::json;
using grammar::Constraint;
using grammar::TokenTable;

// Token b (0..255) is the single byte b; token 256 ends the generation.
inline constexpr int32_t kByteEog = 256;
inline std::shared_ptr<const TokenTable> byte_table() {
  static const auto t = [] {
    std::vector<std::string> bytes(257);
    for (int b = 0; b < 256; ++b) bytes[static_cast<size_t>(b)] = std::string(1, static_cast<char>(b));
    return TokenTable::from_bytes(std::move(bytes), {kByteEog});
  }();
  return t;
}

// Whether the whole text is accepted (every byte allowed, then the end).
inline bool accepts(const json& format, std::string_view text) {
  Constraint c(grammar::compile_format(format), byte_table());
  for (char ch : text) {
    const auto b = static_cast<int32_t>(static_cast<unsigned char>(ch));
    if (!c.allows(b)) return false;
    c.accept(b);
  }
  return c.allows(kByteEog);
}

// Picks among the allowed bytes: uniformly while within budget, then by a
// preference for bytes that tend to close values, so every walk ends.
inline int32_t pick_byte(const std::vector<int32_t>& allowed, bool closing, std::mt19937& rng) {
  if (closing) {
    for (char pref : std::string_view("\"}],0")) {
      for (int32_t b : allowed)
        if (b == static_cast<unsigned char>(pref)) return b;
    }
  }
  return allowed[rng() % allowed.size()];
}

// A random text that the format allows, byte by byte through a Constraint.
inline std::string random_walk_bytes(const json& format, uint32_t seed, size_t budget = 40) {
  std::mt19937 rng(seed);
  Constraint c(grammar::compile_format(format), byte_table());
  std::string text;
  for (size_t step = 0; step < 5000; ++step) {
    if (c.must_end()) return text;
    std::vector<int32_t> allowed;
    for (int32_t b = 0; b < 256; ++b)
      if (c.allows(b)) allowed.push_back(b);
    const bool can_end = c.allows(kByteEog);
    if (can_end && (allowed.empty() || step > budget || rng() % 8 == 0)) return text;
    if (allowed.empty()) {
      ADD_FAILURE() << "dead end after '" << text << "'";
      return text;
    }
    const int32_t b = pick_byte(allowed, step > budget, rng);
    c.accept(b);
    text.push_back(static_cast<char>(b));
  }
  ADD_FAILURE() << "walk did not end: '" << text << "'";
  return text;
}

// ---- validator ------------------------------------------------------------------------

inline size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

inline bool format_ok(const std::string& f, const std::string& s) {
  static const std::string date = R"(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))";
  static const std::string time = R"(([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d))";
  if (f == "date") return std::regex_match(s, std::regex(date));
  if (f == "time") return std::regex_match(s, std::regex(time));
  if (f == "date-time") return std::regex_match(s, std::regex(date + "T" + time));
  if (f == "uuid") return std::regex_match(s, std::regex("[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"));
  return true;
}

// Validates v against schema s (root for $ref); on failure `why` says where.
// `in_all_of`: a branch of allOf sees only some of the properties, so it is
// not closed to the others.
inline bool validate(const json& s, const json& root, const json& v, std::string& why, int depth = 0,
                     bool in_all_of = false) {
  auto no = [&](const std::string& msg) {
    why = msg + " for " + v.dump() + " against " + s.dump();
    return false;
  };
  if (depth > 64) return no("too deep");
  if (s.is_boolean()) return s.get<bool>() ? true : no("false schema");
  if (s.contains("$ref")) {
    const std::string ref = s["$ref"];
    const json& target = ref == "#" ? root : root.at(json::json_pointer(ref.substr(1)));
    if (!validate(target, root, v, why, depth + 1)) return false;
  }
  if (s.contains("allOf")) {
    for (const json& b : s["allOf"])
      if (!validate(b, root, v, why, depth + 1, true)) return false;
  }
  for (const char* kw : {"anyOf", "oneOf"}) {
    if (!s.contains(kw)) continue;
    int n_ok = 0;
    std::string w;
    for (const json& b : s[kw]) n_ok += validate(b, root, v, w, depth + 1);
    if (n_ok == 0 && !(v.is_null() && s.value("nullable", false))) return no(std::string("no branch of ") + kw);
  }
  if (v.is_null() && s.value("nullable", false)) return true;
  if (s.contains("const") && v != s["const"]) return no("const");
  if (s.contains("enum")) {
    bool found = false;
    for (const json& e : s["enum"]) found |= e == v;
    if (!found) return no("enum");
  }
  if (s.contains("type")) {
    std::vector<std::string> types;
    if (s["type"].is_string()) types.push_back(s["type"]);
    else for (const json& t : s["type"]) types.push_back(t);
    bool ok = false;
    for (const std::string& t : types) {
      ok |= (t == "object" && v.is_object()) || (t == "array" && v.is_array()) || (t == "string" && v.is_string()) ||
            (t == "boolean" && v.is_boolean()) || (t == "null" && v.is_null()) ||
            (t == "number" && v.is_number()) || (t == "integer" && v.is_number_integer());
    }
    if (!ok) return no("type");
  }
  if (v.is_object()) {
    const json props = s.value("properties", json::object());
    for (const json& r : s.value("required", json::array()))
      if (!v.contains(r.get<std::string>())) return no("required " + r.get<std::string>());
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (props.contains(it.key())) {
        if (!validate(props[it.key()], root, it.value(), why, depth + 1)) return false;
      } else if (s.contains("additionalProperties")) {
        if (!validate(s["additionalProperties"], root, it.value(), why, depth + 1)) return false;
      } else if (!props.empty() && !in_all_of) {
        return no("unexpected key " + it.key());  // our default: closed when properties are named
      }
    }
  }
  if (v.is_array()) {
    const json prefix = s.value("prefixItems", json::array());
    for (size_t i = 0; i < v.size(); ++i) {
      if (i < prefix.size()) {
        if (!validate(prefix[i], root, v[i], why, depth + 1)) return false;
      } else if (s.contains("items")) {
        if (!validate(s["items"], root, v[i], why, depth + 1)) return false;
      }
    }
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return no("minItems");
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return no("maxItems");
  }
  if (v.is_string()) {
    const std::string str = v;
    if (s.contains("minLength") && utf8_length(str) < s["minLength"].get<size_t>()) return no("minLength");
    if (s.contains("maxLength") && utf8_length(str) > s["maxLength"].get<size_t>()) return no("maxLength");
    if (s.contains("format") && !format_ok(s["format"], str)) return no("format");
  }
  // Of minimum, only the sign is enforced.
  if (v.is_number() && s.contains("minimum") && s["minimum"].get<double>() >= 0 && v.get<double>() < 0)
    return no("sign");
  return true;
}

// Parses `text` and validates it; the "json" format means any object.
inline void expect_valid(const json& format, const std::string& text) {
  json v;
  try {
    v = json::parse(text);
  } catch (const json::exception& e) {
    ADD_FAILURE() << "not JSON: '" << text << "': " << e.what();
    return;
  }
  if (format.is_string()) {
    EXPECT_TRUE(v.is_object()) << text;
    return;
  }
  std::string why;
  EXPECT_TRUE(validate(format, format, v, why)) << text << "\n  " << why;
}

}  // namespace pl::grammartest
