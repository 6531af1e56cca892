#include "runner/runner_server.h"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "http/http_util.h"
#include "kernels/thread_pool.h"
#include "model/model.h"
#include "runner/completion_stream.h"
#include "runner/json_params.h"
#include "runner/log.h"
#include "runner/metrics_text.h"
#include "tokenizer/tokenizer.h"

namespace pl::runner {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

LoadedModel::LoadedModel() = default;
LoadedModel::LoadedModel(LoadedModel&&) noexcept = default;
LoadedModel& LoadedModel::operator=(LoadedModel&&) noexcept = default;
LoadedModel::~LoadedModel() = default;

LoadedModel load_model_file(const std::string& path) {
  LoadedModel m;
  m.model = Model::load(path);
  m.tok = std::make_unique<Tokenizer>(Tokenizer::from_gguf(m.model->gguf()));
  return m;
}

namespace {

// How long a streaming response waits for the engine before checking that the client is still there.
constexpr auto kPollInterval = 100ms;

using http::HttpError;
using http::HttpServer;
using http::send_error;
using http::send_json;
using Handler = httplib::Server::Handler;

// Every route goes through this: no exception ever reaches the HTTP library.
Handler guarded(Handler h) {
  return [h = std::move(h)](const httplib::Request& req, httplib::Response& res) {
    try {
      h(req, res);
    } catch (const HttpError& e) {
      send_error(res, e.status, e.what());
    } catch (const Error& e) {
      send_error(res, 400, e.what());
    } catch (const json::exception& e) {
      send_error(res, 400, std::string("bad request: ") + e.what());
    } catch (const std::exception& e) {
      log_info("internal error in {} {}: {}", req.method, req.path, e.what());
      send_error(res, 500, std::string("internal error: ") + e.what());
    } catch (...) {
      send_error(res, 500, "internal error");
    }
  };
}

}  // namespace

struct RunnerServer::Impl {
  RunnerOptions opt;
  ModelLoader loader;
  HttpServer svr;
  int port = 0;
  int n_http_threads = 0;

  std::atomic<RunnerState> state{RunnerState::Loading};
  mutable std::mutex mu;
  std::condition_variable cv;
  std::string load_error;            // guarded by mu
  Clock::time_point failed_at;       // guarded by mu
  bool stop_requested = false;       // guarded by mu
  bool shut_down = false;            // guarded by mu
  // Set at shutdown before the server stops: open responses end with an error line.
  std::atomic<bool> stopping{false};
  std::atomic<int> n_open_responses{0};  // completion responses still being written

  // Set once by the loading thread before state becomes Ready; read-only after.
  LoadedModel loaded;
  std::unique_ptr<Engine> engine;

  std::thread http_thread;
  std::thread load_thread;
  std::atomic<bool> listen_returned{false};

  // The engine and tokenizer, or the reason they are not there.
  Engine& ready() const {
    if (stopping.load()) throw HttpError(503, "the runner is shutting down");
    switch (state.load(std::memory_order_acquire)) {
      case RunnerState::Ready: return *engine;
      case RunnerState::Loading: throw HttpError(503, "loading model");
      case RunnerState::Failed: {
        std::lock_guard<std::mutex> lock(mu);
        throw HttpError(500, "the model failed to load: " + load_error);
      }
    }
    throw HttpError(500, "bad runner state");
  }
  const Tokenizer& tok() const { return *loaded.tok; }

  // The most sequences that can run at once: each needs at least one KV block.
  int max_parallel() const { return opt.engine.n_ctx / opt.engine.block_size; }

  void load() {
    const auto t0 = Clock::now();
    try {
      LoadedModel m = loader(opt.model_path);
      PL_CHECK(m.model && m.tok, "the model loader returned no model");
      auto e = std::make_unique<Engine>(*m.model, *m.tok, opt.engine);
      loaded = std::move(m);
      engine = std::move(e);
      state.store(RunnerState::Ready, std::memory_order_release);
      const EngineConfig& c = engine->config();
      const ModelConfig& mc = loaded.model->config();
      log_info("model loaded in {:.0f} ms: n_layer={} n_embd={} n_vocab={} ctx={} ctx_per_seq={} kv_blocks={}x{}",
               std::chrono::duration<double, std::milli>(Clock::now() - t0).count(), mc.n_layer, mc.n_embd,
               mc.n_vocab, c.n_ctx, c.n_ctx_seq, engine->stats().kv_blocks_total, c.block_size);
    } catch (const std::exception& e) {
      {
        std::lock_guard<std::mutex> lock(mu);
        load_error = e.what();
        failed_at = Clock::now();
      }
      state.store(RunnerState::Failed, std::memory_order_release);
      log_info("error loading model {}: {}", opt.model_path, e.what());
      cv.notify_all();
    }
  }

  void routes();
  void completion(const httplib::Request& req, httplib::Response& res);
  void embedding(const httplib::Request& req, httplib::Response& res);

  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (shut_down) return;
      shut_down = true;
      stop_requested = true;
    }
    cv.notify_all();
    // Open completions first end with {"error": "the runner is shutting down"}
    // (they see `stopping` at their next poll), so clients get a clear last line
    // rather than a cut connection; bounded, since a stuck client must not hold us.
    stopping.store(true);
    const auto deadline = Clock::now() + 3s;
    while (n_open_responses.load() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
    // Order matters: the HTTP threads hold Request handles that point at the
    // engine, so they are joined first (open streams see the server stopping,
    // end, and cancel their requests); then the engine, then the model it reads.
    svr.stop();
    if (http_thread.joinable()) http_thread.join();
    if (load_thread.joinable()) load_thread.join();
    engine.reset();
    loaded = LoadedModel();
  }
};

void RunnerServer::Impl::completion(const httplib::Request& req, httplib::Response& res) {
  Engine& e = ready();
  CompletionParams p = parse_completion(parse_body(req.body), tok(), req.body);
  // submit() validates (empty or too long prompt, bad ids, bad sampling values): pl::Error -> 400.
  auto stream = std::make_shared<CompletionStream>(e.submit(std::move(p.gen)), p.stream);
  // Counts this response as open until httplib drops the provider (and with it `open`).
  auto open = std::shared_ptr<void>(nullptr, [this](void*) { n_open_responses.fetch_sub(1); });
  n_open_responses.fetch_add(1);
  // Both modes use a chunked provider, so a client that hangs up is noticed
  // (a failed write, or the socket closed while we wait) and its sequence is
  // cancelled. The status is sent before the first token, so a failure after
  // this point (only the engine shutting down, in practice) is reported as a
  // final {"error": ...} line.
  res.status = 200;
  res.set_chunked_content_provider(
      p.stream ? "application/x-ndjson" : http::kJsonContentType,
      [this, stream, open](size_t, httplib::DataSink& sink) {
        try {
          if (stopping.load() && !stream->finished()) {
            stream->abandon("the runner is shutting down");
            const std::string last = dump_json(json{{"error", "the runner is shutting down"}}) + "\n";
            sink.write(last.data(), last.size());
            sink.done();
            return true;
          }
          const std::string out = stream->poll(kPollInterval);
          if (!out.empty()) {
            if (!sink.write(out.data(), out.size())) {
              stream->abandon("client disconnected");
              return false;
            }
          } else if (!stream->finished() && !sink.is_writable()) {
            stream->abandon("client disconnected");
            return false;
          }
          if (stream->finished()) sink.done();
          return true;
        } catch (...) {
          stream->abandon("internal error while streaming");
          return false;
        }
      },
      [stream](bool success) { stream->abandon(success ? "server stopping" : "client disconnected"); });
}

void RunnerServer::Impl::embedding(const httplib::Request& req, httplib::Response& res) {
  Engine& e = ready();
  EmbeddingParams p = parse_embedding(parse_body(req.body), tok());
  std::vector<std::unique_ptr<Request>> handles;
  for (auto& prompt : p.prompts) {
    GenerateRequest g;
    g.prompt = std::move(prompt);
    g.embedding = true;
    g.n_ctx = p.n_ctx;
    g.truncate = p.truncate;
    handles.push_back(e.submit(std::move(g)));  // a bad one throws; the handles so far cancel
  }
  const auto t0 = Clock::now();
  json out = json::array();
  int n_prompt = 0;
  for (auto& h : handles) {
    Event ev;
    while (h->next(ev, 3600s) && !ev.done) {
    }
    if (!ev.done) throw HttpError(500, "the embedding request timed out");
    if (ev.reason != FinishReason::Stop)
      throw HttpError(500, ev.error.empty() ? std::string("embedding ") + std::string(finish_reason_name(ev.reason))
                                            : ev.error);
    n_prompt += ev.timings.n_prompt;
    out.push_back(std::move(ev.embedding));
  }
  log_info("embedding request ids={}..{} inputs={} prompt={} total_ms={:.1f}", handles.front()->id(),
           handles.back()->id(), handles.size(), n_prompt,
           std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  if (p.batch)
    send_json(res, 200, json{{"embeddings", std::move(out)}, {"prompt_n", n_prompt}});
  else
    send_json(res, 200, json{{"embedding", std::move(out[0])}, {"prompt_n", n_prompt}});
}

void RunnerServer::Impl::routes() {
  svr.set_pre_routing_handler([](const httplib::Request& req, httplib::Response&) {
    http::pre_route(req);  // bodies without a length are empty, form-encoded ones JSON; notes the connection
    return httplib::Server::HandlerResponse::Unhandled;
  });
  svr.Get("/health", guarded([this](const httplib::Request&, httplib::Response& res) {
    switch (state.load(std::memory_order_acquire)) {
      case RunnerState::Ready: send_json(res, 200, json{{"status", "ok"}}); break;
      case RunnerState::Loading: send_json(res, 503, json{{"status", "loading model"}}); break;
      case RunnerState::Failed: {
        std::lock_guard<std::mutex> lock(mu);
        send_json(res, 500, json{{"status", "error"}, {"error", "the model failed to load: " + load_error}});
        break;
      }
    }
  }));
  svr.Post("/completion", guarded([this](const auto& req, auto& res) { completion(req, res); }));
  svr.Post("/embedding", guarded([this](const auto& req, auto& res) { embedding(req, res); }));
  svr.Post("/tokenize", guarded([this](const httplib::Request& req, httplib::Response& res) {
    ready();
    send_json(res, 200, json{{"tokens", parse_tokenize(parse_body(req.body), tok())}});
  }));
  svr.Post("/detokenize", guarded([this](const httplib::Request& req, httplib::Response& res) {
    ready();
    send_json(res, 200, json{{"content", tok().decode(parse_detokenize(parse_body(req.body)))}});
  }));
  svr.Get("/slots", guarded([this](const httplib::Request&, httplib::Response& res) {
    json out = json::array();
    for (const SlotInfo& s : ready().slots())
      out.push_back(json{{"id", s.id},
                         {"state", s.state},
                         {"n_prompt", s.n_prompt},
                         {"n_computed", s.n_computed},
                         {"n_generated", s.n_generated},
                         {"age_ms", s.age_ms}});
    send_json(res, 200, out);
  }));
  svr.Get("/parallel", guarded([this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, json{{"parallel", ready().parallel()}});
  }));
  svr.Post("/parallel", guarded([this](const httplib::Request& req, httplib::Response& res) {
    Engine& e = ready();
    const int n = parse_parallel(parse_body(req.body));
    if (n < 1) fail("parallel must be at least 1, got {}", n);
    if (n > max_parallel())
      fail("parallel {} is more than the KV cache can run: ctx-size {} holds {} blocks of {} tokens, and each "
           "running sequence needs at least one",
           n, opt.engine.n_ctx, max_parallel(), opt.engine.block_size);
    const int old = e.parallel();
    e.set_parallel(n);
    if (old != n) log_info("parallel {} -> {}", old, n);
    send_json(res, 200, json{{"parallel", n}});
  }));
  // The engine's snapshot as JSON, for the server (admin API, metrics, tuner): never waits for a step.
  svr.Get("/stats", guarded([this](const httplib::Request&, httplib::Response& res) {
    const EngineStats s = ready().stats();
    send_json(res, 200,
              json{{"parallel", s.n_parallel},
                   {"max_parallel", max_parallel()},
                   {"running", s.n_running},
                   {"waiting", s.n_waiting},
                   {"kv_blocks_total", s.kv_blocks_total},
                   {"kv_blocks_used", s.kv_blocks_used},
                   {"kv_block_size", s.kv_block_size},
                   {"n_ctx", opt.engine.n_ctx},
                   {"prefix_queries", s.prefix_queries},
                   {"prefix_query_tokens", s.prefix_query_tokens},
                   {"prefix_hit_tokens", s.prefix_hit_tokens},
                   {"prompt_tokens", s.prompt_tokens},
                   {"generated_tokens", s.generated_tokens},
                   {"steps", s.steps},
                   {"preemptions", s.preemptions},
                   {"last_step_ms", s.last_step_ms},
                   {"step_ms_total", s.step_ms_total},
                   {"finished", s.finished}});
  }));
  svr.Get("/metrics", guarded([this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(ready().stats()), kMetricsContentType);
  }));

  // Known paths with the wrong method: 405 with the allowed one.
  auto not_allowed = [](const char* allow) {
    return guarded([allow](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Allow", allow);
      send_error(res, 405, fmt::format("method {} is not allowed for {} (use {})", req.method, req.path, allow));
    });
  };
  for (const char* path : {"/health", "/slots", "/metrics", "/stats"}) {
    svr.Post(path, not_allowed("GET"));
    svr.Put(path, not_allowed("GET"));
    svr.Delete(path, not_allowed("GET"));
  }
  for (const char* path : {"/completion", "/embedding", "/tokenize", "/detokenize"}) {
    svr.Get(path, not_allowed("POST"));
    svr.Put(path, not_allowed("POST"));
    svr.Delete(path, not_allowed("POST"));
  }
  svr.Put("/parallel", not_allowed("GET, POST"));
  svr.Delete("/parallel", not_allowed("GET, POST"));

  http::set_json_error_handlers(svr, [](const httplib::Request& req, httplib::Response& res) {
    send_error(res, 404, fmt::format("no such endpoint: {} {}", req.method, req.path));
  });
}

RunnerServer::RunnerServer(RunnerOptions opt, ModelLoader loader) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(opt);
  impl_->loader = std::move(loader);
}

RunnerServer::~RunnerServer() { impl_->shutdown(); }

void RunnerServer::start() {
  Impl& m = *impl_;
  RunnerOptions& o = m.opt;
  EngineConfig& c = o.engine;
  if (c.n_ctx <= 0) fail("--ctx-size must be positive, got {}", c.n_ctx);
  if (c.n_batch <= 0) fail("--batch-size must be positive, got {}", c.n_batch);
  if (c.n_parallel < 1) fail("--parallel must be at least 1, got {}", c.n_parallel);
  if (c.n_threads < 0) fail("--threads must not be negative, got {}", c.n_threads);
  if (c.block_size <= 0) fail("the KV block size must be positive, got {}", c.block_size);
  if (c.n_parallel > m.max_parallel())
    fail("--parallel {} is more than the KV cache can run: --ctx-size {} holds {} blocks of {} tokens, and each "
         "running sequence needs at least one",
         c.n_parallel, c.n_ctx, m.max_parallel(), c.block_size);
  if (o.port < 0 || o.port > 65535) fail("--port must be in 0..65535, got {}", o.port);
  if (c.n_threads == 0) c.n_threads = default_thread_count();
  m.n_http_threads = o.n_http_threads > 0 ? o.n_http_threads : std::max(64, c.n_parallel + 16);

  std::signal(SIGPIPE, SIG_IGN);
  m.routes();
  const int n_http = m.n_http_threads;
  m.svr.new_task_queue = [n_http] { return new httplib::ThreadPool(static_cast<size_t>(n_http)); };
  m.svr.set_keep_alive_max_count(1000);
  m.svr.set_payload_max_length(64u << 20);
  // Streamed tokens are small writes: send each at once.
  m.svr.set_tcp_nodelay(true);
  // httplib's default also sets SO_REUSEPORT, which would let a second runner
  // bind the same port and silently share its connections: address reuse only.
  m.svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  if (o.port == 0) {
    m.port = m.svr.bind_to_any_port(o.host);
    if (m.port < 0) fail("cannot listen on {}: no free port", o.host);
  } else {
    if (!m.svr.bind_to_port(o.host, o.port)) fail("cannot listen on {}:{} (in use, or a bad address?)", o.host, o.port);
    m.port = o.port;
  }
  if (!m.svr.widen_backlog()) fail("cannot listen on {}:{}: {}", o.host, m.port, std::strerror(errno));
  log_info("starting: model={} ctx={} parallel={} batch={} threads={} host={} port={} http_threads={}",
           o.model_path, c.n_ctx, c.n_parallel, c.n_batch, c.n_threads, o.host, m.port, m.n_http_threads);
  m.http_thread = std::thread([&m] {
    if (!m.svr.listen_after_bind()) log_info("the HTTP server stopped with an error");
    m.listen_returned.store(true);
  });
  // Server::stop() does nothing until the listen loop runs: wait for it, so a stop right after start is never lost.
  while (!m.svr.is_running() && !m.listen_returned.load()) std::this_thread::sleep_for(1ms);
  if (m.listen_returned.load()) fail("the HTTP server on {}:{} stopped at once", o.host, m.port);
  log_info("listening on http://{}:{}", o.host, m.port);
  m.load_thread = std::thread([&m] { m.load(); });
}

int RunnerServer::port() const { return impl_->port; }
RunnerState RunnerServer::state() const { return impl_->state.load(); }

std::string RunnerServer::load_error() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->load_error;
}

void RunnerServer::stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop_requested = true;
  }
  impl_->cv.notify_all();
}

bool RunnerServer::finished() const {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  return m.stop_requested || (m.state.load() == RunnerState::Failed &&
                              Clock::now() >= m.failed_at + std::chrono::milliseconds(m.opt.failed_exit_delay_ms));
}

int RunnerServer::wait() {
  Impl& m = *impl_;
  {
    std::unique_lock<std::mutex> lock(m.mu);
    m.cv.wait(lock, [&] { return m.stop_requested || m.state.load() == RunnerState::Failed; });
    if (!m.stop_requested)
      m.cv.wait_until(lock, m.failed_at + std::chrono::milliseconds(m.opt.failed_exit_delay_ms),
                      [&] { return m.stop_requested; });
  }
  const bool failed = m.state.load() == RunnerState::Failed;
  log_info("shutting down");
  m.shutdown();
  log_info("stopped");
  return failed ? 1 : 0;
}

}  // namespace pl::runner
