#include "cli/client.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "core/env.h"
#include "core/error.h"
#include "server/server.h"

namespace pl::cli {

using nlohmann::json;

namespace {

std::string error_message(const std::string& body, int status) {
  try {
    json j = json::parse(body);
    if (j.is_object() && j.contains("error")) {
      if (j["error"].is_string()) return j["error"].get<std::string>();
      if (j["error"].is_object() && j["error"].contains("message")) return j["error"]["message"].get<std::string>();
    }
  } catch (const json::exception&) {
  }
  return fmt::format("HTTP {}: {}", status, body);
}

httplib::Client make(const ApiClient& c) {
  httplib::Client cli(c.scheme + "://" + server::host_port(c.host, c.port));
  if (!c.bearer.empty()) cli.set_bearer_token_auth(c.bearer);
  cli.set_connection_timeout(5, 0);
  cli.set_read_timeout(3600, 0);
  cli.set_write_timeout(3600, 0);
  return cli;
}

[[noreturn]] void unreachable(const ApiClient& c, httplib::Error e) {
  fail("could not connect to parallama at {}:{} ({}): is `parallama serve` running?", c.host, c.port,
       httplib::to_string(e));
}

}  // namespace

ApiClient ApiClient::from_env() {
  // A server that closes the connection mid-upload (a refused blob) must give
  // its error message, not kill the client with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  ApiClient c;
  server::HostSpec spec;
  if (auto h = env_var("OLLAMA_HOST")) spec = server::parse_host(*h);
  c.scheme = spec.scheme;
  c.host = spec.host;
  c.port = spec.port;
  if (c.host == "0.0.0.0") c.host = "127.0.0.1";
  if (c.host == "::") c.host = "::1";
  return c;
}

json ApiClient::call(const std::string& method, const std::string& path, const json& body) const {
  auto cli = make(*this);
  const std::string payload = body.is_null() ? "" : body.dump();
  httplib::Result r = method == "GET"      ? cli.Get(path)
                      : method == "DELETE" ? cli.Delete(path, payload, "application/json")
                                           : cli.Post(path, payload, "application/json");
  if (!r) unreachable(*this, r.error());
  if (r->status >= 400) fail("{}", error_message(r->body, r->status));
  if (r->body.empty()) return json::object();
  try {
    return json::parse(r->body);
  } catch (const json::exception&) {
    return json(r->body);
  }
}

bool ApiClient::stream(const std::string& path, const json& body, const std::function<void(const json&)>& on_line,
                       const std::function<bool()>& stop) const {
  auto cli = make(*this);
  // The watcher closes the socket under a blocked read; the receiver below
  // also stops at the next piece. Either way send() returns false.
  std::atomic<bool> stopped{false}, finished{false};
  std::thread watcher;
  if (stop)
    watcher = std::thread([&] {
      while (!finished.load()) {
        if (stop()) {
          stopped = true;
          cli.stop();
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  struct Join {
    std::atomic<bool>& finished;
    std::thread& t;
    ~Join() {
      finished = true;
      if (t.joinable()) t.join();
    }
  } join{finished, watcher};
  std::string partial, err_body;
  int status = 0;
  std::string line_error;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.response_handler = [&](const httplib::Response& r) {
    status = r.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (stopped.load() || (stop && stop())) {
      stopped = true;
      return false;
    }
    if (status >= 400) {
      err_body.append(data, n);
      return true;
    }
    partial.append(data, n);
    size_t start = 0;
    for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
      const std::string line = partial.substr(start, nl - start);
      if (line.empty()) continue;
      json j = json::parse(line, nullptr, false);
      if (j.is_discarded()) continue;
      if (j.is_object() && j.contains("error")) {
        line_error = error_message(line, status);
        return false;
      }
      on_line(j);
    }
    partial.erase(0, start);
    return true;
  };
  httplib::Response res;
  httplib::Error e = httplib::Error::Success;
  const bool ok = cli.send(req, res, e);
  if (stopped.load()) return false;
  if (!line_error.empty()) fail("{}", line_error);
  if (status >= 400) fail("{}", error_message(err_body, status));
  if (!ok) {
    if (status == 0) unreachable(*this, e);
    fail("the connection to the server broke: {}", httplib::to_string(e));
  }
  return true;
}

bool ApiClient::head(const std::string& path) const {
  auto cli = make(*this);
  httplib::Result r = cli.Head(path);
  if (!r) unreachable(*this, r.error());
  return r->status == 200;
}

void ApiClient::upload(const std::string& path, const std::string& file) const {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail("cannot read {}", file);
  in.seekg(0, std::ios::end);
  const size_t size = static_cast<size_t>(in.tellg());
  in.seekg(0);
  auto cli = make(*this);
  httplib::Result r = cli.Post(
      path, size,
      [&](size_t offset, size_t length, httplib::DataSink& sink) {
        std::vector<char> buf(std::min<size_t>(length, 1 << 20));
        in.seekg(static_cast<std::streamoff>(offset));
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        sink.write(buf.data(), static_cast<size_t>(in.gcount()));
        return true;
      },
      "application/octet-stream");
  if (!r) unreachable(*this, r.error());
  if (r->status >= 400) fail("{}", error_message(r->body, r->status));
}

}  // namespace pl::cli
