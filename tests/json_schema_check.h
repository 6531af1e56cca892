// A small JSON-schema validator for the structured-output tests, written apart
// from src/grammar so that the engine's and runner's outputs are checked by
// code that shares nothing with the grammar that produced them. Covers the
// keywords those tests use: type, properties, required, additionalProperties,
// enum, const, items, minItems, maxItems, minLength, maxLength, anyOf, oneOf,
// $ref to "#" and "#/$defs/<name>". Returns "" when `value` is valid, else
// the first problem with its JSON pointer.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace pl::test {

inline std::string schema_problem(const nlohmann::json& value, const nlohmann::json& schema,
                                  const nlohmann::json& root, const std::string& at = "#") {
  using nlohmann::json;
  if (schema.is_boolean()) return schema.get<bool>() ? "" : at + ": schema false";
  if (schema.contains("$ref")) {
    const std::string ref = schema["$ref"].get<std::string>();
    if (ref == "#") return schema_problem(value, root, root, at);
    const std::string defs = "#/$defs/";
    if (ref.rfind(defs, 0) != 0) return at + ": unsupported $ref " + ref;
    return schema_problem(value, root.at("$defs").at(ref.substr(defs.size())), root, at);
  }
  for (const char* kw : {"anyOf", "oneOf"}) {
    if (!schema.contains(kw)) continue;
    int n_ok = 0;
    for (const json& branch : schema[kw]) n_ok += schema_problem(value, branch, root, at).empty();
    if (n_ok == 0) return at + ": matches no branch of " + kw;
    if (std::string(kw) == "oneOf" && n_ok > 1) return at + ": matches several branches of oneOf";
  }
  if (schema.contains("const") && value != schema["const"]) return at + ": is not the const " + schema["const"].dump();
  if (schema.contains("enum")) {
    bool found = false;
    for (const json& e : schema["enum"]) found |= value == e;
    if (!found) return at + ": " + value.dump() + " is not in the enum";
  }
  if (schema.contains("type")) {
    const std::string t = schema["type"].get<std::string>();
    const bool ok = t == "object"    ? value.is_object()
                    : t == "array"   ? value.is_array()
                    : t == "string"  ? value.is_string()
                    : t == "integer" ? value.is_number_integer()
                    : t == "number"  ? value.is_number()
                    : t == "boolean" ? value.is_boolean()
                    : t == "null"    ? value.is_null()
                                     : false;
    if (!ok) return at + ": " + value.dump() + " is not of type " + t;
  }
  if (value.is_object()) {
    const json props = schema.value("properties", json::object());
    for (const json& r : schema.value("required", json::array()))
      if (!value.contains(r.get<std::string>())) return at + ": missing required property " + r.get<std::string>();
    for (const auto& [k, v] : value.items()) {
      if (props.contains(k)) {
        std::string p = schema_problem(v, props[k], root, at + "/" + k);
        if (!p.empty()) return p;
      } else if (schema.contains("additionalProperties") && schema["additionalProperties"] == false) {
        return at + ": unexpected property " + k;
      }
    }
  }
  if (value.is_array()) {
    const size_t n = value.size();
    if (schema.contains("minItems") && n < schema["minItems"].get<size_t>()) return at + ": too few items";
    if (schema.contains("maxItems") && n > schema["maxItems"].get<size_t>()) return at + ": too many items";
    if (schema.contains("items"))
      for (size_t i = 0; i < n; ++i) {
        std::string p = schema_problem(value[i], schema["items"], root, at + "/" + std::to_string(i));
        if (!p.empty()) return p;
      }
  }
  if (value.is_string()) {
    // Lengths count code points, as JSON schema does.
    size_t n = 0;
    for (unsigned char c : value.get_ref<const std::string&>()) n += (c & 0xC0) != 0x80;
    if (schema.contains("minLength") && n < schema["minLength"].get<size_t>()) return at + ": string too short";
    if (schema.contains("maxLength") && n > schema["maxLength"].get<size_t>()) return at + ": string too long";
  }
  return "";
}

inline std::string schema_problem(const nlohmann::json& value, const nlohmann::json& schema) {
  return schema_problem(value, schema, schema);
}

}  // namespace pl::test
