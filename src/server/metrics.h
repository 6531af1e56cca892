// The server's Prometheus endpoint, GET /metrics: per-model gauges, counters and
// latency histograms over every runner, plus process and system figures
// (docs/API.md lists every metric).
//
// A scrape never waits for a runner, so a router may poll it every 50 ms while a
// long decode step runs. Two poller threads, started and stopped with the Server,
// keep a cache: one reads the scheduler's table (Scheduler::ps(), a short lock)
// and /proc every 50 ms; the other GETs each ready runner's /stats every 250 ms
// with a 500 ms timeout (a runner that does not answer keeps its last snapshot,
// and parallama_runner_stats_age_seconds grows). The proxy path feeds the
// histograms as pieces arrive (RequestTimer). render() only formats the cache
// under one mutex: no I/O, no call into the scheduler.
//
// Counters stay monotonic when a runner restarts (crash, reload with a larger
// context, unload and load again): per model we keep `base`, the sum of the
// counters of the runners that came before, and `last`, the latest snapshot of
// the current one; the export is base + last. When the snapshot comes from a new
// runner pid, or any counter went down, `last` is folded into `base` first.
// What a runner counted after its last poll (at most ~250 ms) is lost with it.
// Series of a model stay after it is unloaded (counters and histograms keep
// their values); its gauges disappear with the runner.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sched/sched.h"

namespace pl::server {

// A Prometheus histogram with fixed upper bounds (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  // Adds `n` observations of `v` (a piece of n tokens counts n inter-token gaps).
  void observe(double v, uint64_t n = 1);
  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative count of observations <= bounds()[i]; i == bounds().size() is +Inf.
  uint64_t cumulative(size_t i) const;
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;    // ascending
  std::vector<uint64_t> counts_;  // [bounds + 1]: per bucket, not cumulative
  uint64_t count_ = 0;
  double sum_ = 0;
};

// The runner's monotonic counters, as its GET /stats reports them.
struct EngineCounters {
  uint64_t prefix_queries = 0;
  uint64_t prefix_query_tokens = 0;
  uint64_t prefix_hit_tokens = 0;
  uint64_t prompt_tokens = 0;
  uint64_t generated_tokens = 0;
  uint64_t steps = 0;
  uint64_t preemptions = 0;
  double step_ms_total = 0;
  std::map<std::string, uint64_t> finished;  // by reason

  EngineCounters& operator+=(const EngineCounters& o);
  // True if any counter is below `before`'s: the runner was replaced.
  bool went_down_from(const EngineCounters& before) const;
};

// The runner's gauges from the same snapshot.
struct EngineGauges {
  int parallel = 0;
  int running = 0;
  int waiting = 0;
  int kv_blocks_total = 0;
  int kv_blocks_used = 0;
  int kv_block_size = 0;
  int max_parallel = 0;  // the most sequences its KV pool can run at all (one block each)
  double last_step_ms = 0;
};

// Parses a runner's GET /stats body; throws nlohmann::json::exception on a malformed one.
void parse_runner_stats(const std::string& body, EngineGauges& gauges, EngineCounters& counters);
// GET /stats from the runner on `port` and parse it: the one reader of that
// endpoint outside the pollers (admin API, /api/ps, the tuner). False when the
// runner does not answer 200 in time or the body does not parse.
bool read_runner_stats(int port, std::chrono::seconds timeout, EngineGauges& gauges, EngineCounters& counters);

// PARALLAMA_VLLM_METRICS: 1/true/yes/on or 0/false/no/off (unset or blank: off);
// throws pl::Error naming the variable for anything else.
bool vllm_metrics_from_env();

class Metrics {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    bool vllm_aliases = false;  // also export vllm:* names (PARALLAMA_VLLM_METRICS=1)
    std::chrono::milliseconds table_interval{50};
    std::chrono::milliseconds stats_interval{250};
    std::chrono::milliseconds stats_timeout{500};
  };

  // `ps` is called from the poller thread only (Scheduler::ps()).
  Metrics(std::function<std::vector<sched::RunnerInfo>()> ps, Options opt);
  ~Metrics();  // stop()
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  void start();
  void stop();  // idempotent; joins the pollers (bounded by one stats timeout)

  // The proxy path's measurements, per model (the scheduler's key).
  void observe_first_token(const std::string& model, double seconds);
  void observe_inter_token(const std::string& model, double seconds, uint64_t n_tokens);
  void observe_end(const std::string& model, double e2e_seconds, double queue_seconds);

  // The exposition text (format 0.0.4), from the cache only.
  std::string render() const;

  // Generated tokens per second of a loaded model over the last kRateWindow of /stats
  // polls (the figure /api/ps, `parallama ps` and the live page show); nullopt until its
  // runner has answered two polls. From the cache only.
  std::optional<double> tokens_per_second(const std::string& model) const;
  // The inter-token gaps (ms) the proxy path measured for a model in [from, to): one per
  // token after a request's first, as its client saw them (the tuner's latency input).
  // Kept for kGapHistory, at most kMaxGaps per model.
  std::vector<double> inter_token_gaps_ms(const std::string& model, Clock::time_point from,
                                          Clock::time_point to) const;
  static constexpr std::chrono::seconds kRateWindow{3};
  static constexpr std::chrono::seconds kGapHistory{10};
  static constexpr size_t kMaxGaps = 1 << 16;

 private:
  struct ModelState;
  struct SystemState {
    uint64_t server_rss_bytes = 0;
    uint64_t mem_available_bytes = 0;
    double load1 = 0, load5 = 0, load15 = 0;
  };

  ModelState& model_locked(const std::string& key);
  void table_loop();
  void stats_loop();

  std::function<std::vector<sched::RunnerInfo>()> ps_;
  Options opt_;

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<ModelState>> models_;  // by model key; guarded by mu_
  SystemState system_;                                         // guarded by mu_
  std::vector<sched::RunnerInfo> table_;                       // the last ps(); guarded by mu_

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // guarded by stop_mu_
  std::thread table_thread_, stats_thread_;
};

// Times one generation in the proxy path: time to first token, the gaps between
// the pieces that follow, end-to-end latency and the runner's queue time.
// Owned by Generation; a null Metrics makes it a no-op.
class RequestTimer {
 public:
  using Clock = std::chrono::steady_clock;
  RequestTimer(Metrics* metrics, std::string model, Clock::time_point t_arrival);
  // A line of the runner's stream carried n tokens (the first one is TTFT).
  void on_tokens(int n, Clock::time_point now);
  // The final line: queue_ms from the runner's timings.
  void on_done(double queue_ms, Clock::time_point now);

 private:
  Metrics* metrics_;
  std::string model_;
  Clock::time_point t_arrival_, t_last_;
  bool first_seen_ = false;
  bool ended_ = false;
};

}  // namespace pl::server
