// Ollama's request options, mapped onto the runner's /completion fields.
//
// The model's Modelfile parameters come first, the request's "options" over
// them (Ollama's precedence). Sampling options go to the runner under its own
// names (num_predict -> n_predict, num_ctx -> n_ctx); num_ctx and num_parallel
// also steer the scheduler. Options Ollama accepts that do not apply here
// (num_gpu, use_mmap, num_thread, ...) are accepted and ignored; unknown names
// are ignored with a log line, as Ollama does; a known option with a wrong type
// or value is a 400 naming it.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "sched/sched.h"

namespace pl::server {

struct ResolvedOptions {
  nlohmann::json runner = nlohmann::json::object();  // fields for the runner's /completion body
  int num_ctx = 0;                                    // 0: the scheduler's default
  std::optional<int> num_parallel;                    // from the Modelfile (PARAMETER num_parallel)
  std::vector<std::string> ignored;                   // unknown option names
};

// model_params: the store's params layer; request_options: the request's "options" (or nullptr).
ResolvedOptions resolve_options(const nlohmann::json& model_params, const nlohmann::json* request_options);

// keep_alive: a duration string ("5m", "1h", "0", "-1") or a number of seconds; nullptr -> none.
std::optional<sched::Millis> parse_keep_alive(const nlohmann::json* v);

}  // namespace pl::server
