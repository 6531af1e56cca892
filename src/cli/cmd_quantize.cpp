// `parallama quantize IN.gguf OUT.gguf TYPE`: convert a model's weights.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <limits>

#include "cli/commands.h"
#include "kernels/thread_pool.h"
#include "model/file_type.h"
#include "model/quantize.h"

namespace pl::cli {

void register_quantize(CLI::App& app) {
  struct Options {
    std::string in, out, type;
    int threads = 0;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("quantize", "Convert a GGUF model's weights to another type");
  cmd->add_option("input", o->in, "Input GGUF model")->required();
  cmd->add_option("output", o->out, "Output GGUF path")->required();
  cmd->add_option("type", o->type, "Target type: " + file_type_names())->required();
  cmd->add_option("-t,--threads", o->threads, "Threads (default: physical cores)")
      ->check(CLI::Range(0, std::numeric_limits<int>::max()));
  cmd->callback([o] {
    const std::string notes =
        quantize_model(o->in, o->out, o->type, o->threads > 0 ? o->threads : default_thread_count());
    if (!notes.empty()) std::fprintf(stderr, "%s\n", notes.c_str());
    std::fprintf(stderr, "wrote %s\n", o->out.c_str());
  });
}

}  // namespace pl::cli
