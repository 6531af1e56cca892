// The runner's HTTP server: one model, one engine, a local HTTP API.
//
//   GET  /health      503 {"status":"loading model"} | 200 {"status":"ok"} | 500 {"status":"error","error":...}
//   POST /completion  generate (NDJSON stream or one JSON; see completion_stream.h)
//   POST /tokenize    {"content", "add_special", "parse_special"} -> {"tokens": [...]}
//   POST /detokenize  {"tokens": [...]} -> {"content": "..."}
//   POST /embedding   {"content"|"input": string | [strings]} -> {"embedding": [...]} | {"embeddings": [[...]]}
//   GET  /slots       the engine's sequences: [{"id","state","n_prompt","n_computed","n_generated","age_ms"}]
//   GET  /parallel    {"parallel": K};  POST /parallel {"n": K} -> {"parallel": K}
//   GET  /metrics     Prometheus text (metrics_text.h)
//   GET  /stats       the same snapshot as JSON: parallel, max_parallel, running, waiting, kv_blocks_total,
//                     kv_blocks_used, kv_block_size, n_ctx, the counters, finished {reason: n}
//
// The listener starts first and the model loads in the background, so whoever
// spawned the runner can poll /health. Bad requests get 400 {"error": ...};
// unknown paths 404, known paths with the wrong method 405; no exception
// leaves a handler. HTTP threads meet the engine only through Engine::submit
// and the Request handles; JSON and HTTP stay out of the engine.
//
// Shutdown (stop(), then wait()): new requests get 503; open completions end
// with a last {"error": "the runner is shutting down"} line (waiting at most 3 s
// for them); then the HTTP threads are joined, the engine destroyed, the model
// unmapped.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "engine/engine.h"

namespace pl {
class Model;
class Tokenizer;
}  // namespace pl

namespace pl::runner {

struct RunnerOptions {
  std::string model_path;
  std::string host = "127.0.0.1";
  int port = 0;                      // 0: any free port (see RunnerServer::port())
  EngineConfig engine;               // n_ctx, n_parallel, n_batch, n_threads, ...
  int n_http_threads = 0;            // 0: max(64, parallel + 16): a streaming client holds a thread
  int failed_exit_delay_ms = 1000;   // after a load failure, /health answers 500 this long, then wait() returns
};

struct LoadedModel {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
  LoadedModel();
  LoadedModel(LoadedModel&&) noexcept;
  LoadedModel& operator=(LoadedModel&&) noexcept;
  ~LoadedModel();
};
// Loads the model and its tokenizer; throws pl::Error. Tests pass a slow or failing one.
using ModelLoader = std::function<LoadedModel(const std::string& path)>;
LoadedModel load_model_file(const std::string& path);

enum class RunnerState { Loading, Ready, Failed };

class RunnerServer {
 public:
  explicit RunnerServer(RunnerOptions opt, ModelLoader loader = load_model_file);
  ~RunnerServer();  // stops the server, then destroys the engine and the model
  RunnerServer(const RunnerServer&) = delete;
  RunnerServer& operator=(const RunnerServer&) = delete;

  // Checks the options, binds the port (pl::Error when it cannot), then starts
  // the HTTP thread and the loading thread. Ignores SIGPIPE for the whole
  // process: the HTTP library writes to sockets without MSG_NOSIGNAL, and a
  // client that hangs up must not kill the runner.
  void start();
  int port() const;
  RunnerState state() const;
  std::string load_error() const;

  // Stops serving; any thread, idempotent (not from a signal handler).
  void stop();
  // True once stop() was called or a load failure's grace period ran out.
  bool finished() const;
  // Blocks until finished(), shuts everything down; returns the exit code:
  // 0 after stop(), 1 after a load failure.
  int wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pl::runner
