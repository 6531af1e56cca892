#include "http/http_util.h"

#include <dirent.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>

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

namespace {

// The connection of the request this thread is handling (each connection is
// served by one thread at a time). httplib 0.11.4 does not hand handlers the
// socket, so it is found once, when first asked for, as the descriptor whose
// peer and local port are the request's.
struct Connection {
  std::string remote_addr;
  int remote_port = -1;
  int local_port = -1;
  int fd = -1;
  bool looked_up = false;
};
thread_local Connection t_connection;

// addr's numeric host and port, formatted as httplib formats remote_addr.
bool endpoint_of(const sockaddr_storage& addr, socklen_t len, std::string& host, int& port) {
  char h[NI_MAXHOST], p[NI_MAXSERV];
  if (::getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, h, sizeof h, p, sizeof p,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return false;
  host = h;
  port = std::atoi(p);
  return true;
}

int find_socket(const Connection& c) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int found = -1;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const int fd = std::atoi(e->d_name);
    sockaddr_storage peer{}, local{};
    socklen_t peer_len = sizeof peer, local_len = sizeof local;
    std::string peer_host, local_host;
    int peer_port = -1, local_port = -1;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
        !endpoint_of(peer, peer_len, peer_host, peer_port) || !endpoint_of(local, local_len, local_host, local_port))
      continue;
    if (peer_port == c.remote_port && local_port == c.local_port && peer_host == c.remote_addr) {
      found = fd;
      break;
    }
  }
  ::closedir(dir);
  return found;
}

}  // namespace

bool client_disconnected() {
  Connection& c = t_connection;
  if (!c.looked_up) {
    c.fd = c.remote_port < 0 ? -1 : find_socket(c);
    c.looked_up = true;
  }
  if (c.fd < 0) return false;
  char byte;
  const ssize_t n = ::recv(c.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return false;  // the client's next request, pipelined
  if (n == 0) return true;  // EOF: the client closed the connection
  return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

void pre_route(const httplib::Request& creq) {
  t_connection = Connection{creq.remote_addr, creq.remote_port, creq.local_port};
  auto& req = const_cast<httplib::Request&>(creq);
  const bool has_body_method =
      req.method == "POST" || req.method == "PUT" || req.method == "PATCH" || req.method == "DELETE";
  if (has_body_method && !req.has_header("Content-Length") && !req.has_header("Transfer-Encoding"))
    req.headers.emplace("Content-Length", "0");
  auto ct = req.headers.find("Content-Type");
  if (ct != req.headers.end() && ct->second.rfind("application/x-www-form-urlencoded", 0) == 0)
    ct->second = "application/json";
}

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
