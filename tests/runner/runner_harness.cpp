#include "runner_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>
#include <thread>

#include "model/model.h"
#include "model/random_model.h"
#include "tokenizer/tokenizer.h"

extern char** environ;

namespace pl::test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

std::unique_ptr<RunnerProcess> RunnerProcess::spawn(const std::string& model, const std::vector<std::string>& args) {
  auto p = std::unique_ptr<RunnerProcess>(new RunnerProcess());
  p->port_ = free_port();
  char tmpl[] = "/tmp/pl_runner_log_XXXXXX";
  const int log_fd = ::mkstemp(tmpl);
  p->log_path_ = tmpl;
  std::vector<std::string> argv_s = {kBin, "runner", "--model", model, "--port", std::to_string(p->port_)};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  // One compute thread unless a test asks: the kernels' pool spins, and on a
  // shared 2-core machine two runners x 2 threads slow every step down many times.
  if (std::find(args.begin(), args.end(), "--threads") == args.end()) argv_s.insert(argv_s.end(), {"--threads", "1"});
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, log_fd, 1);
  posix_spawn_file_actions_adddup2(&fa, log_fd, 2);
  const int rc = ::posix_spawn(&p->pid_, kBin.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(log_fd);
  if (rc != 0) {
    ADD_FAILURE() << "cannot start " << kBin << ": " << std::strerror(rc);
    p->pid_ = -1;
  }
  return p;
}

std::unique_ptr<RunnerProcess> RunnerProcess::start(const std::string& model, const std::vector<std::string>& args,
                                                    std::chrono::milliseconds timeout) {
  auto p = spawn(model, args);
  httplib::Client c = p->client();
  c.set_connection_timeout(0, 200000);
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (auto r = c.Get("/health"); r && r->status == 200) return p;
    if (p->wait_exit(0ms)) break;
    std::this_thread::sleep_for(5ms);
  }
  ADD_FAILURE() << "the runner did not become healthy; its log:\n" << p->log();
  return p;
}

RunnerProcess::~RunnerProcess() {
  const int code = terminate();
  if (code != 0 && !allow_failure_exit_) ADD_FAILURE() << "the runner exited with " << code << "; its log:\n" << log();
  if (!log_path_.empty()) std::filesystem::remove(log_path_);
}

httplib::Client RunnerProcess::client() const {
  httplib::Client c("127.0.0.1", port_);
  c.set_read_timeout(60, 0);
  return c;
}

std::string RunnerProcess::log() const { return read_file(log_path_); }

std::optional<int> RunnerProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  if (pid_ < 0) return -1;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      return exit_code_;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(2ms);
  }
}

int RunnerProcess::terminate(std::chrono::milliseconds timeout) {
  if (exit_code_) return *exit_code_;
  if (pid_ < 0) return -1;
  ::kill(pid_, SIGTERM);
  if (auto code = wait_exit(timeout)) return *code;
  ADD_FAILURE() << "the runner did not exit after SIGTERM; killing it";
  ::kill(pid_, SIGKILL);
  wait_exit(10s);
  return -1;
}

namespace {

HttpResult to_result(const httplib::Result& r) {
  HttpResult out;
  if (!r) return out;
  out.status = r->status;
  out.text = r->body;
  out.body = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (out.body.is_discarded()) out.body = nullptr;
  return out;
}

}  // namespace

HttpResult get(httplib::Client& c, const std::string& path) { return to_result(c.Get(path.c_str())); }

HttpResult post(httplib::Client& c, const std::string& path, const json& body) {
  return post_raw(c, path, body.dump());
}

HttpResult post_raw(httplib::Client& c, const std::string& path, const std::string& body) {
  return to_result(c.Post(path.c_str(), body, "application/json"));
}

Completion complete(const std::string& url, json body) {
  Completion out;
  httplib::Client c(url);
  c.set_read_timeout(120, 0);
  const bool stream = body.value("stream", false);
  httplib::Request req;
  req.method = "POST";
  req.path = "/completion";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  std::string buf;
  const auto t0 = Clock::now();
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buf.append(data, n);
    size_t nl;
    while (stream && (nl = buf.find('\n')) != std::string::npos) {
      out.chunks.push_back(json::parse(buf.substr(0, nl)));
      out.arrival_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      buf.erase(0, nl + 1);
    }
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  if (!c.send(req, res, err)) {
    ADD_FAILURE() << "completion request failed: " << httplib::to_string(err);
    return out;
  }
  out.status = res.status;
  if (!stream) {
    // Errors before generation come in the response body; the receiver got the body otherwise.
    const std::string& text = buf.empty() ? res.body : buf;
    out.final = json::parse(text, nullptr, false);
    if (out.final.is_discarded()) {
      ADD_FAILURE() << "not JSON: " << text;
      return out;
    }
    out.chunks.push_back(out.final);
    out.content = out.final.value("content", "");
    if (out.final.contains("tokens")) out.tokens = out.final["tokens"].get<std::vector<int32_t>>();
    return out;
  }
  if (!buf.empty()) {
    // A 4xx before streaming began has a plain JSON body without a newline.
    out.chunks.push_back(json::parse(buf, nullptr, false));
  }
  for (const json& ch : out.chunks) {
    if (ch.contains("content") && ch.is_object()) out.content += ch["content"].get<std::string>();
    if (ch.contains("tokens")) {
      auto ids = ch["tokens"].get<std::vector<int32_t>>();
      out.tokens.insert(out.tokens.end(), ids.begin(), ids.end());
    }
  }
  if (!out.chunks.empty()) out.final = out.chunks.back();
  return out;
}

namespace {

bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; }
bool is_name_char(char c) { return is_name_start(c) || std::isdigit(static_cast<unsigned char>(c)); }

// Reads a metric (or, without colons, label) name at `pos`; empty when there is none.
std::string read_name(const std::string& s, size_t& pos, bool allow_colon = true) {
  const size_t start = pos;
  while (pos < s.size() && (pos == start ? is_name_start(s[pos]) : is_name_char(s[pos])) &&
         (allow_colon || s[pos] != ':'))
    ++pos;
  return s.substr(start, pos - start);
}

// `{name="value",...}` at `pos`; false when malformed.
bool read_labels(const std::string& s, size_t& pos) {
  if (s[pos] != '{') return false;
  ++pos;
  if (pos < s.size() && s[pos] == '}') return ++pos, true;
  for (;;) {
    if (read_name(s, pos, false).empty()) return false;
    if (s.compare(pos, 2, "=\"") != 0) return false;
    pos += 2;
    while (pos < s.size() && s[pos] != '"') {
      if (s[pos] == '\\') {
        if (pos + 1 >= s.size() || (s[pos + 1] != '\\' && s[pos + 1] != '"' && s[pos + 1] != 'n')) return false;
        ++pos;
      }
      ++pos;
    }
    if (pos >= s.size()) return false;
    ++pos;  // closing quote
    if (pos < s.size() && s[pos] == ',') {
      ++pos;
      continue;
    }
    if (pos < s.size() && s[pos] == '}') return ++pos, true;
    return false;
  }
}

}  // namespace

std::map<std::string, double> parse_metrics(const std::string& text) {
  static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary", "untyped"};
  std::map<std::string, double> out;
  std::set<std::string> helped, typed, sampled;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      const bool help = line.rfind("# HELP ", 0) == 0, type = line.rfind("# TYPE ", 0) == 0;
      if (!help && !type) {
        ADD_FAILURE() << "bad comment line: " << line;
        continue;
      }
      size_t pos = 7;
      const std::string name = read_name(line, pos);
      if (name.empty() || pos >= line.size() || line[pos] != ' ' || pos + 1 >= line.size()) {
        ADD_FAILURE() << "bad comment line: " << line;
        continue;
      }
      if (help) {
        helped.insert(name);
      } else {
        EXPECT_TRUE(kTypes.count(line.substr(pos + 1))) << "bad type: " << line;
        EXPECT_FALSE(sampled.count(name)) << "TYPE after samples of " << name;
        typed.insert(name);
      }
      continue;
    }
    size_t pos = 0;
    const std::string name = read_name(line, pos);
    const size_t labels_start = pos;
    if (name.empty() || pos >= line.size() || (line[pos] == '{' && !read_labels(line, pos)) || pos >= line.size() ||
        line[pos] != ' ') {
      ADD_FAILURE() << "bad sample line: " << line;
      continue;
    }
    const std::string labels = line.substr(labels_start, pos - labels_start);
    const std::string value = line.substr(pos + 1);
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(value, &used);
    } catch (...) {
    }
    EXPECT_TRUE(used == value.size() && !value.empty()) << "bad value: " << line;
    EXPECT_TRUE(helped.count(name)) << "no HELP before " << name;
    EXPECT_TRUE(typed.count(name)) << "no TYPE before " << name;
    sampled.insert(name);
    EXPECT_FALSE(out.count(name + labels)) << "duplicate series " << name << labels;
    out[name + labels] = v;
  }
  return out;
}

std::map<std::string, double> metrics(httplib::Client& c) {
  auto r = c.Get("/metrics");
  if (!r || r->status != 200) {
    ADD_FAILURE() << "GET /metrics failed";
    return {};
  }
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4");
  return parse_metrics(r->body);
}

const Tokenizer& random_model_tokenizer() {
  static TempDir dir;
  static std::unique_ptr<Model> model;
  static std::unique_ptr<Tokenizer> tok;
  if (!tok) {
    write_random_model(RandomModelSpec{}, dir.file("m.gguf"), 1);
    model = Model::load(dir.file("m.gguf"));
    tok = std::make_unique<Tokenizer>(Tokenizer::from_gguf(model->gguf()));
  }
  return *tok;
}

}  // namespace pl::test
