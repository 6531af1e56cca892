// `parallama runner`: one model behind a local HTTP API (src/runner), the
// child process that `parallama serve` spawns per loaded model.
//
// SIGTERM/SIGINT stop it cleanly: the signals are blocked in every thread
// (before any thread exists) and taken here with sigtimedwait, so shutdown runs
// as ordinary code, not inside a signal handler.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <csignal>
#include <ctime>

#include "cli/commands.h"
#include "core/error.h"
#include "model/kv_store.h"
#include "runner/log.h"
#include "runner/runner_server.h"

namespace pl::cli {

void register_runner(CLI::App& app) {
  struct Options : runner::RunnerOptions {
    bool no_prefix_cache = false;
  };
  auto o = std::make_shared<Options>();
  o->engine.n_ctx = 4096;
  o->engine.n_batch = 512;
  auto* cmd = app.add_subcommand("runner", "Serve one model over a local HTTP API (spawned by the server)");
  cmd->add_option("-m,--model", o->model_path, "GGUF model")->required();
  cmd->add_option("-c,--ctx-size", o->engine.n_ctx,
                  "KV cache size in tokens, shared by all sequences (each gets ctx-size / parallel)")
      ->capture_default_str();
  cmd->add_option("--parallel", o->engine.n_parallel, "Sequences that run at once")->capture_default_str();
  cmd->add_option("-b,--batch-size", o->engine.n_batch, "Tokens per forward pass")->capture_default_str();
  cmd->add_option("-t,--threads", o->engine.n_threads, "Compute threads (0: physical cores)")->capture_default_str();
  cmd->add_option("--host", o->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->port, "Port to listen on (0: any free port, logged)")->capture_default_str();
  cmd->add_option("--http-threads", o->n_http_threads, "HTTP worker threads (0: max(64, parallel + 16))")
      ->capture_default_str();
  cmd->add_flag("--no-prefix-cache", o->no_prefix_cache,
                "Do not share KV blocks between prompts with a common prefix");
  cmd->callback([o] {
    o->engine.prefix_cache = !o->no_prefix_cache;
    check_context_size(o->engine.n_ctx);
    // A forward pass never holds more tokens than the KV pool: a larger batch
    // would only size buffers for nothing (the server passes 512 whatever the context).
    if (o->engine.n_batch > o->engine.n_ctx) o->engine.n_batch = o->engine.n_ctx;
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    // A runner outlives no parent: when the server that spawned it dies (even
    // by SIGKILL) the runner is re-parented, and stops instead of holding the
    // model's memory forever. (PR_SET_PDEATHSIG would fire when the spawning
    // *thread* ends, which for the server is any HTTP thread.)
    const pid_t parent = getppid();
    runner::RunnerServer server(static_cast<const runner::RunnerOptions&>(*o));
    server.start();
    bool orphaned = false;
    while (!server.finished()) {
      if (!orphaned && getppid() != parent) {
        orphaned = true;
        runner::log_info("the parent process {} went away, stopping", parent);
        server.stop();
      }
      const timespec tick{0, 100 * 1000 * 1000};
      const int sig = sigtimedwait(&stop_signals, nullptr, &tick);
      if (sig == SIGTERM || sig == SIGINT) {
        runner::log_info("received {}, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        server.stop();
      }
    }
    if (server.wait() != 0) fail("the model failed to load: {}", server.load_error());
  });
}

}  // namespace pl::cli
