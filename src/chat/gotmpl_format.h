// How Go prints values: fmt's %v for floats and encoding/json's Marshal
// (HTML-safe string escaping, float layout), over nlohmann JSON values.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "chat/jinja_value.h"  // Budget

namespace pl::chat::go {

// fmt's %v of a float64.
std::string go_float(double d);
// encoding/json's float64.
std::string json_float(double d);
// encoding/json string escaping.
void json_string(std::string& out, const std::string& s);
// encoding/json.Marshal of a value (objects keep their key order), charging steps.
void json_value(std::string& out, const nlohmann::ordered_json& j, jinja::Budget& budget);

}  // namespace pl::chat::go
