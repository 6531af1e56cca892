// `parallama bench`'s results and their three renderings: a terminal table,
// JSON and an SVG chart. Pure functions over plain data, so they are tested
// without a server (tests/cli/test_bench_report.cpp).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pl::cli {

struct Quantiles {
  double p50 = 0, p90 = 0, p95 = 0, p99 = 0, mean = 0;
  size_t n = 0;  // samples; 0: every field is meaningless
};

// Linear interpolation between closest ranks; p in [0, 1]. Empty input -> 0.
double percentile(std::vector<double> values, double p);
Quantiles summarize(const std::vector<double>& values);

// One parallelism level of the sweep.
struct LevelResult {
  int parallel = 0;
  std::string error;         // non-empty: the level did not run (the server refused the limit)
  double window_s = 0;       // measured wall time, from the first request to the cut-off
  int64_t n_tokens = 0;      // generated tokens received inside the window
  int n_requests = 0;        // requests started inside the window
  int n_completed = 0;       // of which finished before the cut-off
  int n_failed = 0;          // of which the server answered with an error
  std::string first_failure;
  double agg_tok_s = 0;      // n_tokens / window_s
  double per_stream_tok_s = 0;  // median over requests of their decode rate (first to last token)
  Quantiles ttft_ms;         // request sent -> first token
  Quantiles itl_ms;          // gaps between tokens (a chunk of k tokens counts as k equal gaps)
  double prompt_tokens_mean = 0;  // the server's prompt_eval_count over completed requests
  uint64_t size_bytes = 0;   // /api/ps "size" (weights + KV) at the end of the level; 0: unknown
  double kv_used_max = -1;   // peak /api/parallel kv_used (0..1); < 0: unknown
  uint64_t rss_bytes_max = 0;  // peak resident memory of the model's runner (/metrics); 0: unknown
  int queued_max = 0;        // peak /api/ps queued: > 0 means the limit did not hold
};

struct BenchReport {
  std::string model;
  int prompt_tokens = 0, gen_tokens = 0;
  double duration_s = 0;
  double max_itl_ms = 0;
  std::optional<int> previous_parallel;  // the limit before the sweep (restored after it)
  std::string previous_source;
  bool restored = false;
  bool interrupted = false;
  std::vector<LevelResult> levels;
};

// The level with the highest aggregate throughput whose ITL p95 is <= max_itl_ms.
std::optional<size_t> best_level(const std::vector<LevelResult>& levels, double max_itl_ms);

nlohmann::json report_json(const BenchReport& r);
std::string report_table(const BenchReport& r);
// A standalone SVG document: throughput (left axis) and ITL p95 (right axis)
// against parallelism, the latency target as a dashed line, the best level marked.
std::string report_svg(const BenchReport& r);

// "1.2 GB"
std::string human_bytes(uint64_t b);

}  // namespace pl::cli
