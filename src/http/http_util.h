// HTTP responses and the listening socket, shared by the runner and the server.
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <stdexcept>
#include <string>

namespace pl::http {

// An error with its HTTP status, thrown inside handlers (bad input is pl::Error -> 400).
struct HttpError : std::runtime_error {
  int status;
  HttpError(int s, const std::string& msg) : std::runtime_error(msg), status(s) {}
};

inline constexpr const char* kJsonContentType = "application/json; charset=utf-8";

// A JSON response (kJsonContentType), serialized with dump_json.
void send_json(httplib::Response& res, int status, const nlohmann::json& body);
// Ollama's (and the runner's) error shape: {"error": "..."}.
void send_error(httplib::Response& res, int status, const std::string& msg);

// httplib 0.11.4 listens with a backlog of 5: when more clients connect at once
// (every slot of a parallel runner, say) the extra SYNs are dropped and the
// clients retry a second later. listen() again on the bound socket widens it.
class HttpServer : public httplib::Server {
 public:
  bool widen_backlog();
};

// Every response with status >= 400 that a route left without a body gets a
// JSON one: `not_found` writes 404s (the API's own shape and wording), others
// get {"error": "HTTP error N"}; an exception that escapes a route is a 500
// {"error": "internal error: ..."}.
using NotFoundFn = std::function<void(const httplib::Request&, httplib::Response&)>;
void set_json_error_handlers(httplib::Server& svr, NotFoundFn not_found);

}  // namespace pl::http
