// Environment variables as Ollama reads them.
#pragma once

#include <optional>
#include <string>

namespace pl {

// The variable with surrounding spaces removed, then surrounding quotes (" or ')
// and the spaces inside them: `Environment="OLLAMA_NUM_PARALLEL=10"` in systemd,
// `OLLAMA_KEEP_ALIVE="24h"` in an env file or a compose list and ` 10 ` all read
// as the same value. Empty (or only spaces and quotes) is unset, as in Ollama.
std::optional<std::string> env_var(const char* name);

}  // namespace pl
