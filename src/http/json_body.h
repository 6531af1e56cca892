// JSON request bodies, shared by the runner's and the server's HTTP APIs.
//
// Every function throws pl::Error with a message that names the field and says
// what is wrong ("field 'stream' must be a boolean, got string"); the HTTP
// layer turns that into a 400. A field that is absent or null is "not given".
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>

namespace pl::http {

// The request body as a JSON object: pl::Error for an empty body, malformed
// JSON (a number beyond double included) or anything but an object.
nlohmann::json parse_body(const std::string& body);

// Serializes a response object; invalid UTF-8 (the detokenizer may produce it
// for odd ids) becomes U+FFFD instead of an exception.
std::string dump_json(const nlohmann::json& j);

// A JSON value's type for error messages ("a fractional number", "string", ...).
std::string type_of(const nlohmann::json& v);

// The field, or nullptr when absent or null.
const nlohmann::json* field(const nlohmann::json& body, const char* name);
// The field's value, `def` when absent or null; pl::Error for another type.
std::string get_string(const nlohmann::json& body, const char* name, const std::string& def = "");
bool get_bool(const nlohmann::json& body, const char* name, bool def);

}  // namespace pl::http
