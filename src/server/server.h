// `parallama serve`: Ollama's HTTP API (and OpenAI's) over the model store and
// the runner scheduler.
//
// Handlers parse and check the request, resolve the model in the store, take a
// lease on its runner from the scheduler and proxy the generation to the
// runner's /completion, turning its NDJSON lines into Ollama's or OpenAI's
// response shapes. docs/API.md lists every endpoint and field.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "sched/sched.h"
#include "tune/tuner.h"

namespace pl::server {

struct ServerConfig {
  std::string host = "127.0.0.1";  // OLLAMA_HOST
  int port = 11434;
  std::vector<std::string> origins;  // OLLAMA_ORIGINS (added to the default localhost origins)
  std::filesystem::path models;      // OLLAMA_MODELS
  std::filesystem::path demo_model;  // built-in stories260k GGUF, registered when the store lacks it ("" = none)
  sched::SchedConfig sched;
  bool vllm_metrics = false;         // PARALLAMA_VLLM_METRICS: also export vLLM's metric names on /metrics
  tune::TunerConfig tuner;           // PARALLAMA_TARGET_ITL (the automatic tuner's latency target)
  std::string admin_token;           // PARALLAMA_ADMIN_TOKEN: required by the admin API when set

  // Reads OLLAMA_HOST, OLLAMA_ORIGINS, OLLAMA_MODELS and the scheduler's
  // variables; throws pl::Error naming a bad variable.
  static ServerConfig from_env();
};

// OLLAMA_HOST, as Ollama reads it: "[http|https://]host[:port][/]". The host is
// a name, an IPv4 address, or an IPv6 one with or without brackets ("::1",
// "[::1]:8080"); none is 127.0.0.1. The port defaults to 11434 without a
// scheme, 80 with http:// and 443 with https://. Throws pl::Error (a bad port,
// an unknown scheme, a path).
struct HostSpec {
  std::string scheme = "http";
  std::string host = "127.0.0.1";
  int port = 11434;
};
HostSpec parse_host(const std::string& value);
// "host:port", an IPv6 host in brackets ("[::1]:11434"), as URLs and Go write it.
std::string host_port(const std::string& host, int port);

// Is a browser Origin allowed? localhost/127.0.0.1/0.0.0.0 on any port over
// http(s), app://, file://, tauri:// and the patterns of OLLAMA_ORIGINS ('*' wildcards).
bool origin_allowed(const std::string& origin, const std::vector<std::string>& extra);

class Server {
 public:
  explicit Server(ServerConfig cfg);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds (pl::Error when it cannot), starts serving on a background thread.
  void start();
  int port() const;
  void stop();  // idempotent, any thread (not a signal handler)
  void wait();  // until stop()

  struct Impl;  // internal to src/server (server_impl.h)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pl::server
