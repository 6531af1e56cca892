// `parallama serve`: the Ollama-compatible server, configured by the
// environment like Ollama (OLLAMA_HOST, OLLAMA_NUM_PARALLEL, ...; see
// docs/CONFIGURATION.md). SIGINT/SIGTERM stop it and every runner it started.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <thread>

#include "cli/commands.h"
#include "kernels/kernels.h"
#include "server/server.h"

namespace pl::cli {

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

std::filesystem::path self_exe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path("parallama") : p;
}

}  // namespace

void register_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Start the Ollama-compatible server (configured by OLLAMA_* variables)");
  cmd->callback([] {
    // The runners inherit PARALLAMA_CPU: a bad value stops the server here,
    // not every model load later.
    kernels::cpu_level();
    server::ServerConfig cfg = server::ServerConfig::from_env();
    cfg.sched.runner_exe = self_exe();
    // The built-in demo (stories260K, MIT): PARALLAMA_DEMO_MODEL overrides the
    // path, an empty value turns it off.
    if (const char* d = std::getenv("PARALLAMA_DEMO_MODEL"))
      cfg.demo_model = d;
    else
      cfg.demo_model = PARALLAMA_DEMO_MODEL_PATH;
    server::Server srv(cfg);
    srv.start();
    // A flag set by the handler, polled here: no signal mask to inherit into the runners.
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::fprintf(stderr, "shutting down: stopping the runners\n");
    srv.stop();
  });
}

}  // namespace pl::cli
