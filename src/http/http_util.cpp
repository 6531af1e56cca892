#include "http/http_util.h"

#include <sys/socket.h>

#include <exception>

#include "http/json_body.h"

namespace pl::http {

using nlohmann::json;

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump_json(body), kJsonContentType);
}

void send_error(httplib::Response& res, int status, const std::string& msg) {
  send_json(res, status, json{{"error", msg}});
}

bool HttpServer::widen_backlog() { return ::listen(svr_sock_, SOMAXCONN) == 0; }

void set_json_error_handlers(httplib::Server& svr, NotFoundFn not_found) {
  svr.set_error_handler([not_found = std::move(not_found)](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404)
      not_found(req, res);
    else
      send_error(res, res.status, "HTTP error " + std::to_string(res.status));
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, 500, "internal error: " + what);
  });
}

}  // namespace pl::http
