#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"parallama: an Ollama-compatible LLM server that serves many requests in parallel"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "parallama 0.1.0");

  pl::cli::register_inspect(app);
  pl::cli::register_make_model(app);
  pl::cli::register_generate(app);
  pl::cli::register_logits(app);
  pl::cli::register_quantize(app);
  pl::cli::register_tokenize(app);
  pl::cli::register_detokenize(app);
  pl::cli::register_import_tokenizer(app);
  pl::cli::register_runner(app);
  pl::cli::register_serve(app);
  pl::cli::register_client_commands(app);
  pl::cli::register_bench(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const pl::Error& e) {
    std::fprintf(stderr, "Error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "Error: %s\n", e.what());
    return 1;
  }
  return 0;
}
