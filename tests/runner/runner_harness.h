// Helpers for the runner tests: start the real `parallama runner` binary as a
// child process on a free loopback port, talk to it with httplib::Client, and
// read NDJSON streams.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "test_util.h"

namespace pl {
class Tokenizer;
}

namespace pl::test {

using nlohmann::json;

inline const std::string kStories = (kTestdata / "models/stories260K.gguf").string();

#define REQUIRE_STORIES()                                                                                 \
  if (!std::filesystem::exists(::pl::test::kStories)) GTEST_SKIP() << "stories260K model not found at " \
                                                                   << ::pl::test::kStories

// A loopback port that was free a moment ago (the OS picks it).
int free_port();

// A `parallama runner` child process. The destructor sends SIGTERM and reaps it.
class RunnerProcess {
 public:
  // Starts the runner with --model and --port plus `args`; waits (up to
  // `timeout`) for /health 200. On failure the test fails with the runner's log.
  static std::unique_ptr<RunnerProcess> start(const std::string& model, const std::vector<std::string>& args,
                                              std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Starts without waiting for health.
  static std::unique_ptr<RunnerProcess> spawn(const std::string& model, const std::vector<std::string>& args);
  ~RunnerProcess();

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  httplib::Client client() const;
  std::string log() const;
  // Sends SIGTERM and waits (bounded); returns the exit code, -1 if it did not exit normally.
  int terminate(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Waits for the process to exit on its own; the exit code, or nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // By default the destructor fails the test unless the runner exits 0 after
  // SIGTERM (that also catches sanitizer reports and crashes at shutdown).
  void allow_failure_exit() { allow_failure_exit_ = true; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_path_;
  std::optional<int> exit_code_;
  bool allow_failure_exit_ = false;
};

struct HttpResult {
  int status = 0;  // 0: no response
  json body;       // parsed when the body is JSON, else null
  std::string text;
};
HttpResult get(httplib::Client& c, const std::string& path);
HttpResult post(httplib::Client& c, const std::string& path, const json& body);
HttpResult post_raw(httplib::Client& c, const std::string& path, const std::string& body);

// A /completion request's outcome, whether streamed or not.
struct Completion {
  int status = 0;
  std::string content;
  std::vector<int32_t> tokens;
  json final;                          // the last object (stop: true), or the error object
  std::vector<json> chunks;            // streamed objects, final included
  std::vector<double> arrival_ms;      // per chunk, since the request was sent
};
// Sends `body` (with "stream" as given) and collects the result; for a stream,
// content/tokens are the concatenation of the chunks.
Completion complete(const std::string& url, json body);

// Metrics text -> {"name{labels}": value}; checks the exposition syntax with gtest assertions.
std::map<std::string, double> parse_metrics(const std::string& text);
std::map<std::string, double> metrics(httplib::Client& c);

// The tokenizer of a small random model (synthetic SPM-style vocab with BOS),
// made once per test binary: for the request parsers' tests.
const Tokenizer& random_model_tokenizer();

}  // namespace pl::test
