#include "http/json_body.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace pl::http {

using nlohmann::json;

json parse_body(const std::string& body) {
  if (body.empty()) fail("missing request body");
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number beyond double
    fail("invalid JSON in the request body: {}", e.what());
  }
  if (!j.is_object()) fail("the request body must be a JSON object, got {}", type_of(j));
  return j;
}

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string type_of(const json& v) {
  if (v.is_number_float()) return "a fractional number";
  return v.type_name();
}

const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string get_string(const json& body, const char* name, const std::string& def) {
  const json* v = field(body, name);
  if (v == nullptr) return def;
  if (!v->is_string()) fail("field '{}' must be a string, got {}", name, type_of(*v));
  return v->get<std::string>();
}

bool get_bool(const json& body, const char* name, bool def) {
  const json* v = field(body, name);
  if (v == nullptr) return def;
  if (!v->is_boolean()) fail("field '{}' must be a boolean, got {}", name, type_of(*v));
  return v->get<bool>();
}

}  // namespace pl::http
