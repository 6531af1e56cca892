// Small HTTP helpers shared by the server's handlers.
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "http/http_util.h"
#include "http/json_body.h"

namespace pl::server {

// Shared with the runner (src/http): HttpError, send_json, send_error
// (Ollama's shape {"error": "..."}), dump_json, parse_body and the field accessors.
using http::dump_json;
using http::field;
using http::get_bool;
using http::get_string;
using http::HttpError;
using http::parse_body;
using http::send_error;
using http::send_json;
using http::type_of;
// OpenAI's error shape: {"error": {"message", "type", "param", "code"}}.
void send_openai_error(httplib::Response& res, int status, const std::string& msg);
nlohmann::json openai_error(int status, const std::string& msg);

// RFC 3339 with nanoseconds in UTC, as Ollama writes created_at.
std::string rfc3339(std::chrono::system_clock::time_point t);
std::string now_rfc3339();
// The Unix time (seconds, UTC) of an RFC 3339 time's date and time of day; the
// fraction and zone suffix are ignored (ours are UTC). 0 when it does not parse.
int64_t unix_of_rfc3339(const std::string& t);

// Route wrappers: no exception reaches the HTTP library. HttpError keeps its
// status, pl::Error and JSON type errors are 400, anything else 500; in
// Ollama's or OpenAI's error shape.
using Handler = httplib::Server::Handler;
Handler ollama_handler(std::function<void(const httplib::Request&, httplib::Response&)> h);
Handler openai_handler(std::function<void(const httplib::Request&, httplib::Response&)> h);

// The model name of a request: "model", or the legacy "name".
std::string model_field(const nlohmann::json& body);

}  // namespace pl::server
