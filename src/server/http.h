// Small HTTP helpers shared by the server's handlers.
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace pl::server {

// An error with its HTTP status, thrown inside handlers (bad input is pl::Error -> 400).
struct HttpError : std::runtime_error {
  int status;
  HttpError(int s, const std::string& msg) : std::runtime_error(msg), status(s) {}
};

// Serializes a response object (invalid UTF-8 becomes U+FFFD rather than an exception).
std::string dump(const nlohmann::json& j);
void send_json(httplib::Response& res, int status, const nlohmann::json& body);
// Ollama's error shape: {"error": "..."}.
void send_error(httplib::Response& res, int status, const std::string& msg);
// OpenAI's error shape: {"error": {"message", "type", "param", "code"}}.
void send_openai_error(httplib::Response& res, int status, const std::string& msg);
nlohmann::json openai_error(int status, const std::string& msg);

// The request body as a JSON object; pl::Error for malformed JSON or a non-object.
nlohmann::json parse_body(const std::string& body);

// RFC 3339 with nanoseconds in UTC, as Ollama writes created_at.
std::string rfc3339(std::chrono::system_clock::time_point t);
std::string now_rfc3339();
// The Unix time (seconds, UTC) of an RFC 3339 time's date and time of day; the
// fraction and zone suffix are ignored (ours are UTC). 0 when it does not parse.
int64_t unix_of_rfc3339(const std::string& t);

// Field accessors that name the field in their errors; absent or null -> nullptr / default.
const nlohmann::json* field(const nlohmann::json& body, const char* name);
std::string get_string(const nlohmann::json& body, const char* name, const std::string& def = "");
bool get_bool(const nlohmann::json& body, const char* name, bool def);
std::string type_of(const nlohmann::json& v);

// Route wrappers: no exception reaches the HTTP library. HttpError keeps its
// status, pl::Error and JSON type errors are 400, anything else 500; in
// Ollama's or OpenAI's error shape.
using Handler = httplib::Server::Handler;
Handler ollama_handler(std::function<void(const httplib::Request&, httplib::Response&)> h);
Handler openai_handler(std::function<void(const httplib::Request&, httplib::Response&)> h);

// The model name of a request: "model", or the legacy "name".
std::string model_field(const nlohmann::json& body);

}  // namespace pl::server
