// The server's shared state and the generation plumbing its handlers share.
// Internal to src/server.
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "sched/sched.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/autotune.h"
#include "server/options.h"
#include "server/prompt.h"
#include "server/runner_call.h"
#include "server/server.h"
#include "store/store.h"

namespace pl::server {

using Clock = std::chrono::steady_clock;

using http::HttpServer;

// One streamed generation on a runner: what the runner sends, as pieces.
struct Piece {
  enum class Kind { Text, Done, Error } kind = Kind::Text;
  std::string content;
  int n_tokens = 0;
  std::string done_reason;             // Done: stop | length
  nlohmann::json timings;              // Done: the runner's timings
  std::string error;                   // Error
};

class Generation {
 public:
  // Starts the runner call and waits for its status: throws HttpError with the
  // runner's status and message when it refused the request (a prompt too long,
  // a bad option), or 500 when the runner is gone.
  // `metrics` (may be null) gets the generation's latencies.
  Generation(std::unique_ptr<sched::Lease> lease, const std::string& path, const nlohmann::json& body,
             Clock::time_point t_arrival, Metrics* metrics = nullptr);
  // The next piece; false on timeout (call again).
  bool next(Piece& out, std::chrono::milliseconds timeout);
  void cancel() { call_.cancel(); }

  double load_ms() const { return lease_->load_ms(); }
  Clock::time_point t_arrival() const { return t_arrival_; }
  const sched::Lease& lease() const { return *lease_; }
  // The ids of the tokens generated so far, in order.
  const std::vector<int32_t>& generated_ids() const { return generated_ids_; }

 private:

  std::unique_ptr<sched::Lease> lease_;
  RunnerCall call_;
  Clock::time_point t_arrival_;
  bool finished_ = false;
  RequestTimer timer_;
  std::vector<int32_t> generated_ids_;
};

// The runner's /completion body: the options' runner fields, the prompt, always
// streamed (the server collects it for non-streaming clients), truncated to fit;
// `format` (response_format.h: null, "json" or a schema) for structured output.
nlohmann::json runner_body(const RenderedPrompt& prompt, const ResolvedOptions& opt,
                           const nlohmann::json& format = nullptr);

// Ollama's final statistics (nanoseconds) from the runner's timings.
nlohmann::json ollama_stats(const Generation& g, const Piece& done);

struct Server::Impl {
  ServerConfig cfg;
  store::Store store;
  std::mutex store_mu;  // serialises create/copy/delete/blob writes
  std::unique_ptr<sched::Scheduler> sched;
  std::unique_ptr<AutoTuner> tuner;  // num_parallel "auto"
  std::unique_ptr<Metrics> metrics;  // GET /metrics (metrics.h); made in start(), after sched
  HttpServer svr;
  std::thread http_thread;
  int port = 0;
  std::atomic<bool> stopping{false};
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stop_requested = false;

  explicit Impl(ServerConfig c);

  // The model, or HttpError 404 "model 'x' not found".
  store::ModelInfo model(const std::string& name);
  // Takes a runner for the model: BusyError -> 503, load failures -> 500.
  std::unique_ptr<sched::Lease> acquire(const store::ModelInfo& m, const ResolvedOptions& opt,
                                        std::optional<sched::Millis> keep_alive);

  void routes();
  void routes_ollama();
  void routes_models();
  void routes_openai();
  void routes_metrics();
  void routes_admin();
  // The admin API's gate: loopback only, or the bearer token when one is set (401/403).
  void check_admin(const httplib::Request& req) const;
  nlohmann::json parallel_status();
  // HttpError 400 with the numbers when n sequences cannot run in the model's KV pool.
  void check_fits_pool(const std::string& key, int n);
  // The automatic tuner for one model (num_parallel "auto").
  void start_auto(const std::string& key);
  void stop_auto(const std::string& key);
  void register_demo_model();

  // Ollama handlers
  void generate(const httplib::Request& req, httplib::Response& res);
  void chat(const httplib::Request& req, httplib::Response& res);
  void embed(const httplib::Request& req, httplib::Response& res, bool legacy);
  // OpenAI handlers
  void oai_chat(const httplib::Request& req, httplib::Response& res);
  void oai_completions(const httplib::Request& req, httplib::Response& res);
  void oai_embeddings(const httplib::Request& req, httplib::Response& res);
};

// Runs `gen` to its end, calling on_piece for each piece (non-streaming responses).
void drain(Generation& gen, const std::function<void(const Piece&)>& on_piece);
// A streaming response: each piece becomes bytes through `format` (empty: send nothing);
// the stream ends after a Done or Error piece; a client that goes away cancels the runner's sequence.
void stream_response(httplib::Response& res, const char* content_type, std::shared_ptr<Generation> gen,
                     std::function<std::string(const Piece&)> format, std::string trailer = "");

// Embeddings of several inputs from the runner: {"embeddings": [[...]], "prompt_n": N}.
struct EmbedResult {
  std::vector<std::vector<float>> vectors;
  int n_prompt = 0;
};
EmbedResult run_embeddings(sched::Lease& lease, const std::vector<std::string>& inputs, int num_ctx, bool truncate);
// Why the lease's runner could not be reached: its exit reason when it died,
// else "lost the connection to the model runner[: transport_error]".
std::string lost_runner_message(const sched::Lease& lease, const std::string& transport_error);
// A plain POST to the lease's runner; an unreachable runner is a 500 with
// lost_runner_message, any status it answers is the caller's to judge.
RunnerReply post_to_runner(const sched::Lease& lease, const std::string& path, const nlohmann::json& body);
// L2-normalised copy (Ollama's /api/embed and OpenAI's /v1/embeddings return unit vectors).
std::vector<float> normalized(const std::vector<float>& v);

}  // namespace pl::server
