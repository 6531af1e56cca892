#include "server/server.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <utility>

#include "core/env.h"
#include "core/error.h"
#include "server/autotune.h"
#include "server/server_impl.h"
#include "server/ui.h"

namespace pl::server {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Why binding host:port failed, in Go's words as Ollama prints them: the host
// does not resolve, or bind's error (a port in use, an address not on this
// machine). httplib only says that it failed.
std::string bind_failure(const std::string& host, int port) {
  const std::string where = "listen tcp " + host_port(host, port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0)
    return fmt::format("{}: cannot resolve host '{}': {}", where, host, ::gai_strerror(rc));
  std::string why = "cannot bind";
  const int fd = ::socket(res->ai_family, res->ai_socktype, res->ai_protocol);
  if (fd >= 0) {
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
      why = std::strerror(errno);
      if (!why.empty()) why[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[0])));
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return fmt::format("{}: bind: {}", where, why);
}

// Ollama variables that mean nothing here: a set one gets a start-up note
// rather than silence, so nobody expects what it does in Ollama.
void note_ignored_variables() {
  static constexpr std::pair<const char*, const char*> kIgnored[] = {
      {"OLLAMA_DEBUG", "the log has one level"},
      {"OLLAMA_FLASH_ATTENTION", "attention always runs tiled, in one pass over the KV cache"},
      {"OLLAMA_KV_CACHE_TYPE", "the KV cache is f16"},
      {"OLLAMA_NOPRUNE", "there are no partial downloads to prune"},
      {"OLLAMA_SCHED_SPREAD", "there are no GPUs to spread over"},
      {"OLLAMA_GPU_OVERHEAD", "there are no GPUs"},
      {"OLLAMA_LLM_LIBRARY", "there is one engine, with CPU kernels chosen at start-up (see PARALLAMA_CPU)"},
      {"OLLAMA_MULTIUSER_CACHE", "the prefix cache is shared by every request already"},
      {"OLLAMA_NEW_ENGINE", "there is one engine"},
  };
  for (const auto& [name, why] : kIgnored)
    if (auto v = env_var(name)) std::fprintf(stderr, "note: %s=%s has no effect in parallama: %s\n", name, v->c_str(), why);
}

// One thread per connection, started on demand: a streaming client holds its
// thread for the whole generation, and a fixed pool would make requests beyond
// it wait unseen (neither running nor counted against OLLAMA_MAX_QUEUE).
class ThreadPerConnection : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++n_;
    }
    std::thread([this, fn = std::move(fn)] {
      fn();
      std::lock_guard<std::mutex> lock(mu_);
      if (--n_ == 0) cv_.notify_all();
    }).detach();
  }
  void shutdown() override {
    // Bounded: open streams end when the server stops reading them.
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, 10s, [&] { return n_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int n_ = 0;
};

}  // namespace

HostSpec parse_host(const std::string& value) {
  HostSpec out;
  std::string s = value;
  int default_port = 11434;
  if (auto p = s.find("://"); p != std::string::npos) {
    out.scheme = s.substr(0, p);
    if (out.scheme != "http" && out.scheme != "https") fail("OLLAMA_HOST has an unsupported scheme '{}'", out.scheme);
    default_port = out.scheme == "https" ? 443 : 80;
    s = s.substr(p + 3);
  }
  if (!s.empty() && s.back() == '/') s.pop_back();
  if (s.find('/') != std::string::npos) fail("OLLAMA_HOST '{}': a path after the host is not supported", value);
  std::string h = s, p;
  if (!s.empty() && s.front() == '[') {  // [v6] or [v6]:port
    auto close = s.find(']');
    if (close == std::string::npos) fail("OLLAMA_HOST '{}': missing ']'", value);
    h = s.substr(1, close - 1);
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') fail("OLLAMA_HOST '{}': expected ':port' after ']'", value);
      p = s.substr(close + 2);
    }
  } else if (std::count(s.begin(), s.end(), ':') == 1) {  // host:port (more colons: a bare IPv6 address)
    const auto colon = s.find(':');
    h = s.substr(0, colon);
    p = s.substr(colon + 1);
  }
  if (!h.empty()) out.host = h;
  out.port = default_port;
  if (!p.empty()) {
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(p.c_str(), &end, 10);
    if (errno != 0 || end == p.c_str() || *end != '\0' || v < 0 || v > 65535)
      fail("OLLAMA_HOST '{}': bad port '{}'", value, p);
    out.port = static_cast<int>(v);
  }
  return out;
}

std::string host_port(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

bool origin_allowed(const std::string& origin, const std::vector<std::string>& extra) {
  static const std::regex local(
      R"(^(https?://(localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(:\d+)?|(app|file|tauri|vscode-webview)://.*)$)");
  if (std::regex_match(origin, local)) return true;
  for (const auto& pat : extra) {
    if (pat == "*") return true;
    // '*' matches any run of characters; everything else literally.
    std::string re;
    for (char c : pat) {
      if (c == '*')
        re += ".*";
      else if (std::strchr(".^$|()[]{}+?\\", c) != nullptr)
        re += std::string("\\") + c;
      else
        re += c;
    }
    if (std::regex_match(origin, std::regex(re))) return true;
  }
  return false;
}

ServerConfig ServerConfig::from_env() {
  ServerConfig c;
  if (auto h = env_var("OLLAMA_HOST")) {
    const HostSpec spec = parse_host(*h);  // serve speaks plain HTTP whatever the scheme, as Ollama's does
    c.host = spec.host;
    c.port = spec.port;
  }
  if (auto o = env_var("OLLAMA_ORIGINS")) {
    std::string s = *o;
    size_t start = 0;
    while (start <= s.size()) {
      size_t comma = s.find(',', start);
      if (comma == std::string::npos) comma = s.size();
      std::string item = s.substr(start, comma - start);
      item.erase(0, item.find_first_not_of(" \t"));
      item.erase(item.find_last_not_of(" \t") + 1);
      if (!item.empty()) c.origins.push_back(item);
      start = comma + 1;
    }
  }
  c.models = store::Store::default_root();
  if (auto t = env_var("PARALLAMA_ADMIN_TOKEN")) c.admin_token = *t;
  c.tuner = tuner_config_from_env();
  c.sched = sched::SchedConfig::from_env();
  c.vllm_metrics = vllm_metrics_from_env();
  return c;
}

Server::Impl::Impl(ServerConfig c) : cfg(std::move(c)), store(cfg.models) {}

store::ModelInfo Server::Impl::model(const std::string& name) {
  try {
    return store.get(name);
  } catch (const store::NotFoundError& e) {
    throw HttpError(404, e.what());
  }
}

std::unique_ptr<sched::Lease> Server::Impl::acquire(const store::ModelInfo& m, const ResolvedOptions& opt,
                                                    std::optional<sched::Millis> keep_alive) {
  sched::ModelRequest r;
  r.key = m.name.display();
  r.gguf = m.model_path;
  r.num_ctx = opt.num_ctx;
  r.num_parallel = opt.num_parallel;
  r.keep_alive = keep_alive;
  try {
    return sched->acquire(r);
  } catch (const sched::BusyError& e) {
    throw HttpError(503, e.what());
  } catch (const Error& e) {
    throw HttpError(500, e.what());
  }
}

void Server::Impl::register_demo_model() {
  if (cfg.demo_model.empty() || !std::filesystem::exists(cfg.demo_model)) return;
  try {
    if (store.find("stories260k")) return;
    std::lock_guard<std::mutex> lock(store_mu);
    store::CreateRequest req;
    req.from = cfg.demo_model.string();
    req.license = std::vector<std::string>{
        "MIT License. stories260K by Andrej Karpathy (llama2.c), trained on TinyStories."};
    store.create("stories260k", req);
    std::fprintf(stderr, "registered the built-in demo model stories260k\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "could not register the built-in demo model: %s\n", e.what());
  }
}

void Server::Impl::routes() {
  // CORS: browsers send Origin; allowed origins get the headers, others 403 (as Ollama).
  svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    http::pre_route(req);  // bodies without a length are empty, form-encoded ones JSON; notes the connection
    if (!req.has_header("Origin")) return httplib::Server::HandlerResponse::Unhandled;
    const std::string origin = req.get_header_value("Origin");
    if (!origin_allowed(origin, cfg.origins)) {
      send_error(res, 403, "origin not allowed: " + origin + " (see OLLAMA_ORIGINS)");
      return httplib::Server::HandlerResponse::Handled;
    }
    res.set_header("Access-Control-Allow-Origin", origin);
    res.set_header("Vary", "Origin");
    res.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
    res.set_header("Access-Control-Allow-Headers",
                   "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, OpenAI-Beta, "
                   "x-stainless-arch, x-stainless-lang, x-stainless-os, x-stainless-package-version, "
                   "x-stainless-retry-count, x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout");
    if (req.method == "OPTIONS") {
      res.status = 204;
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  svr.Options(".*", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });

  register_ui_routes(svr);  // GET / ("parallama is running", or the live page for browsers) and GET /ui
  svr.Get("/api/version", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, json{{"version", "0.1.0"}});
  });
  routes_ollama();
  routes_models();
  routes_openai();
  routes_metrics();
  routes_admin();

  http::set_json_error_handlers(svr, [](const httplib::Request& req, httplib::Response& res) {
    if (req.path.rfind("/v1/", 0) == 0)
      send_openai_error(res, 404, fmt::format("no such endpoint: {} {}", req.method, req.path));
    else
      send_error(res, 404, fmt::format("404 page not found: {} {}", req.method, req.path));
  });
}

Server::Server(ServerConfig cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {}

Server::~Server() {
  stop();
  Impl& m = *impl_;
  m.svr.stop();
  if (m.http_thread.joinable()) m.http_thread.join();
  m.tuner.reset();    // it calls the scheduler and reads the metrics
  m.metrics.reset();  // its pollers call the scheduler
  m.sched.reset();    // stops every runner
}

void Server::start() {
  Impl& m = *impl_;
  std::signal(SIGPIPE, SIG_IGN);
  note_ignored_variables();
  std::filesystem::create_directories(m.cfg.models);
  m.sched = std::make_unique<sched::Scheduler>(m.cfg.sched);
  Metrics::Options metrics_opt;
  metrics_opt.vllm_aliases = m.cfg.vllm_metrics;
  m.metrics = std::make_unique<Metrics>([&m] { return m.sched->ps(); }, metrics_opt);
  m.metrics->start();
  m.tuner = std::make_unique<AutoTuner>(*m.sched, m.cfg.tuner, m.cfg.sched.auto_parallel, m.metrics.get());
  m.tuner->start();
  m.register_demo_model();
  m.routes();
  m.svr.new_task_queue = [] { return new ThreadPerConnection(); };
  m.svr.set_keep_alive_max_count(1000);
  m.svr.set_payload_max_length(64ull << 30);  // blob uploads are whole GGUF files
  m.svr.set_read_timeout(600, 0);
  m.svr.set_write_timeout(600, 0);
  m.svr.set_tcp_nodelay(true);
  m.svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  if (m.cfg.port == 0) {
    m.port = m.svr.bind_to_any_port(m.cfg.host);
    if (m.port < 0) fail("cannot listen on {}: no free port", m.cfg.host);
  } else {
    if (!m.svr.bind_to_port(m.cfg.host, m.cfg.port)) fail("{}", bind_failure(m.cfg.host, m.cfg.port));
    m.port = m.cfg.port;
  }
  if (!m.svr.widen_backlog()) fail("cannot listen on {}:{}: {}", m.cfg.host, m.port, std::strerror(errno));
  m.http_thread = std::thread([&m] { m.svr.listen_after_bind(); });
  while (!m.svr.is_running()) std::this_thread::sleep_for(1ms);
  std::fprintf(stderr, "Listening on %s:%d (parallama 0.1.0), models in %s\n", m.cfg.host.c_str(), m.port,
               m.cfg.models.c_str());
}

int Server::port() const { return impl_->port; }

void Server::stop() {
  std::lock_guard<std::mutex> lock(impl_->stop_mu);
  impl_->stop_requested = true;
  impl_->stop_cv.notify_all();
}

void Server::wait() {
  std::unique_lock<std::mutex> lock(impl_->stop_mu);
  impl_->stop_cv.wait(lock, [&] { return impl_->stop_requested; });
}

}  // namespace pl::server
