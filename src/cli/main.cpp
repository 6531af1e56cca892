#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"parallama: an Ollama-compatible LLM server that serves many requests in parallel", "parallama"};
  app.require_subcommand(1);
  app.set_version_flag("-v,--version", "parallama 0.1.0");

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

  // As Ollama's CLI: `help [COMMAND]`, help with no command at all, and an
  // unknown command named as such rather than "a subcommand is required".
  auto find_command = [&app](const std::string& name) {
    auto found = app.get_subcommands([&](const CLI::App* s) { return s->check_name(name); });
    return found.empty() ? nullptr : found.front();
  };
  // The formatter, not App::help(), which would describe the `help` command itself once it is parsed.
  auto help_of = [](const CLI::App* a, const std::string& prev) {
    return a->get_formatter()->make_help(a, prev, CLI::AppFormatMode::Normal);
  };
  auto topic = std::make_shared<std::string>();
  auto* help = app.add_subcommand("help", "Help about any command");
  help->add_option("command", *topic, "The command to describe");
  help->callback([&app, topic, find_command, help_of] {
    if (topic->empty()) return (void)std::printf("%s", help_of(&app, "parallama").c_str());
    if (const CLI::App* cmd = find_command(*topic))
      return (void)std::printf("%s", help_of(cmd, "parallama " + cmd->get_name()).c_str());
    std::printf("Unknown help topic [`%s`]\n%s", topic->c_str(), help_of(&app, "parallama").c_str());
  });
  if (argc < 2) {
    std::printf("%s", app.help().c_str());
    return 0;
  }
  if (argv[1][0] != '-' && find_command(argv[1]) == nullptr) {
    std::fprintf(stderr, "Error: unknown command \"%s\" for \"parallama\"\nRun 'parallama --help' for usage.\n", argv[1]);
    return 1;
  }

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
