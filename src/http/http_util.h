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

// What every request needs before httplib reads its body and routes it (call
// it first in the pre-routing handler):
// - A POST, PUT, PATCH or DELETE with neither Content-Length nor chunked
//   Transfer-Encoding has an empty body (RFC 9112, 6.3); httplib 0.11.4 would
//   read until the client closes, i.e. hang. It gets Content-Length: 0.
// - Ollama reads every body as JSON, whatever its Content-Type. curl -d labels
//   bodies application/x-www-form-urlencoded, which httplib refuses above 8 KiB
//   (413) and parses as a query string; such bodies are relabelled JSON.
// - The request's connection is noted for client_disconnected().
// The request object httplib passes is its own, non-const one.
void pre_route(const httplib::Request& req);

// Inside a handler: whether the client has closed its end of the connection
// (EOF or an error on its socket), for handlers that compute for a long time
// before they write anything (a non-streaming generation): as with Ollama, a
// client that goes away cancels its request. False when the connection is not
// known (pre_route not called on this thread).
bool client_disconnected();

// Every response with status >= 400 that a route left without a body gets a
// JSON one: `not_found` writes 404s (the API's own shape and wording), others
// get {"error": "HTTP error N"}; an exception that escapes a route is a 500
// {"error": "internal error: ..."}.
using NotFoundFn = std::function<void(const httplib::Request&, httplib::Response&)>;
void set_json_error_handlers(httplib::Server& svr, NotFoundFn not_found);

}  // namespace pl::http
