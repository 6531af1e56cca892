#include "runner/metrics_text.h"

#include <fmt/core.h>

namespace pl::runner {

namespace {

// Finish reasons that always get a series, so a rate() over them starts at 0
// instead of appearing with the first request that ends that way.
constexpr const char* kReasons[] = {"stop", "length", "cancelled", "error"};

class Writer {
 public:
  template <class T>
  void metric(const char* name, const char* type, const char* help, T value) {
    header(name, type, help);
    sample(name, "", value);
  }
  void header(const char* name, const char* type, const char* help) {
    out_ += fmt::format("# HELP parallama_runner_{} {}\n# TYPE parallama_runner_{} {}\n", name, help, name, type);
  }
  template <class T>
  void sample(const char* name, const std::string& labels, T value) {
    out_ += fmt::format("parallama_runner_{}{} {}\n", name, labels, value);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Label values escape backslash, double quote and newline.
std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

}  // namespace

std::string metrics_text(const EngineStats& s) {
  Writer w;
  w.metric("requests_running", "gauge", "Sequences admitted and running (holding KV blocks).", s.n_running);
  w.metric("requests_waiting", "gauge", "Requests queued, waiting for a running slot.", s.n_waiting);
  w.metric("parallel", "gauge", "Most sequences that run at once (the parallel setting).", s.n_parallel);
  w.metric("kv_blocks_used", "gauge", "KV cache blocks held by sequences.", s.kv_blocks_used);
  w.metric("kv_blocks_total", "gauge", "KV cache blocks in the pool.", s.kv_blocks_total);
  w.metric("kv_block_size", "gauge", "Tokens per KV cache block.", s.kv_block_size);
  const double usage = s.kv_blocks_total > 0 ? static_cast<double>(s.kv_blocks_used) / s.kv_blocks_total : 0.0;
  w.metric("kv_usage_ratio", "gauge", "Fraction of KV cache blocks held by sequences (0-1).", usage);
  w.metric("prefix_cache_queries_total", "counter", "Admissions that looked up the prefix cache.",
           s.prefix_queries);
  w.metric("prefix_cache_query_tokens_total", "counter", "Prompt tokens (in full blocks) looked up in the prefix cache.",
           s.prefix_query_tokens);
  w.metric("prefix_cache_hit_tokens_total", "counter", "Prompt tokens found in the prefix cache.",
           s.prefix_hit_tokens);
  w.metric("prompt_tokens_total", "counter", "Prompt tokens computed (prefix cache hits excluded).", s.prompt_tokens);
  w.metric("generated_tokens_total", "counter", "Tokens generated.", s.generated_tokens);
  w.metric("steps_total", "counter", "Engine steps (forward passes).", s.steps);
  w.metric("step_seconds_total", "counter", "Time spent in engine steps, in seconds.", s.step_ms_total / 1000.0);
  w.metric("last_step_seconds", "gauge", "Duration of the last engine step, in seconds.", s.last_step_ms / 1000.0);
  w.metric("preemptions_total", "counter", "Sequences preempted because the KV pool ran out.", s.preemptions);

  w.header("requests_finished_total", "counter", "Requests finished, by reason.");
  auto finished = s.finished;
  for (const char* r : kReasons) finished.try_emplace(r, 0);
  for (const auto& [reason, n] : finished)
    w.sample("requests_finished_total", "{reason=\"" + label_value(reason) + "\"}", n);
  return w.take();
}

}  // namespace pl::runner
