#include "server/response_format.h"

#include <string_view>

#include "core/error.h"
#include "grammar/grammar.h"
#include "server/http.h"

namespace pl::server {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

// The schema at `path` of the raw body, in its own key order (the body parsed
// already, so this parse cannot fail), compiled once so that a bad schema is
// refused here; `what` names the field in the message.
RunnerFormat checked_schema(const std::string& raw_body, std::initializer_list<const char*> path,
                            const std::string& what) {
  const ordered_json whole = ordered_json::parse(raw_body);
  const ordered_json* schema = &whole;
  for (const char* key : path) schema = &schema->at(key);
  try {
    grammar::compile_format_ordered(*schema);
  } catch (const Error& e) {
    std::string_view msg = e.what();
    if (msg.starts_with("format: ")) msg.remove_prefix(8);  // the grammar's messages begin so
    fail("{}: {}", what, msg);
  }
  return schema->dump();
}

}  // namespace

RunnerFormat ollama_format(const json& body, const std::string& raw_body) {
  const json* format = field(body, "format");
  if (format == nullptr) return nullptr;
  if (format->is_string()) {
    const std::string& s = format->get_ref<const std::string&>();
    if (s.empty()) return nullptr;
    if (s == "json") return "json";
    fail("field 'format' must be \"json\" or a JSON schema object, got \"{}\"", s);
  }
  if (!format->is_object()) fail("field 'format' must be \"json\" or a JSON schema object, got {}", type_of(*format));
  return checked_schema(raw_body, {"format"}, "field 'format'");
}

RunnerFormat openai_response_format(const json& body, const std::string& raw_body) {
  const json* rf = field(body, "response_format");
  if (rf == nullptr) return nullptr;
  if (!rf->is_object()) fail("'response_format' must be an object, got {}", type_of(*rf));
  const json* type = field(*rf, "type");
  if (type == nullptr || !type->is_string()) fail("'response_format.type' must be a string");
  const std::string& t = type->get_ref<const std::string&>();
  if (t == "text") return nullptr;
  if (t == "json_object") return "json";
  if (t != "json_schema")
    fail("'response_format.type' must be \"text\", \"json_object\" or \"json_schema\", got \"{}\"", t);
  const json* js = field(*rf, "json_schema");
  if (js == nullptr || !js->is_object())
    fail("'response_format.json_schema' must be an object with 'name' and 'schema' when the type is json_schema");
  const json* name = field(*js, "name");
  if (name == nullptr || !name->is_string() || name->get_ref<const std::string&>().empty())
    fail("'response_format.json_schema.name' must be a non-empty string");
  if (const json* strict = field(*js, "strict"); strict != nullptr && !strict->is_boolean())
    fail("'response_format.json_schema.strict' must be a boolean, got {}", type_of(*strict));
  const json* schema = field(*js, "schema");
  if (schema == nullptr)
    fail("'response_format.json_schema.schema' is missing (type json_object asks for any JSON object)");
  if (!schema->is_object())
    fail("'response_format.json_schema.schema' must be a JSON schema object, got {}", type_of(*schema));
  return checked_schema(raw_body, {"response_format", "json_schema", "schema"}, "'response_format.json_schema.schema'");
}

}  // namespace pl::server
