// Every subcommand lives in its own cmd_<name>.cpp and exposes one
// register_<name>() that adds it to the app with its callback. Callbacks throw
// pl::Error for bad input; main() turns that into a message and exit code 1.
#pragma once

namespace CLI {
class App;
}

namespace pl::cli {

void register_inspect(CLI::App& app);
void register_make_model(CLI::App& app);
void register_generate(CLI::App& app);
void register_logits(CLI::App& app);
void register_quantize(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_detokenize(CLI::App& app);
void register_import_tokenizer(CLI::App& app);
void register_runner(CLI::App& app);
void register_serve(CLI::App& app);
void register_client_commands(CLI::App& app);  // run list ps show create cp rm stop pull
void register_bench(CLI::App& app);

}  // namespace pl::cli
