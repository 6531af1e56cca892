// `parallama run` (cmd_run.cpp), split from the other client commands
// (cmd_client.cpp) because its interactive chat is a program of its own.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace pl::cli {

// Adds `run` to the app; register_client_commands calls it.
void register_run(CLI::App& app);

// `parallama show MODEL [--PART]`: part is "" for the summary, else modelfile,
// parameters, template, system or license. The chat's /show uses it too.
void show_model(const std::string& model, const std::string& part);

}  // namespace pl::cli
