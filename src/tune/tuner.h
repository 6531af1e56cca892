// The automatic parallelism tuner (OLLAMA_NUM_PARALLEL=auto): pure policy, no I/O, no clock.
//
// How the caller drives it (one Tuner per loaded model in "auto" mode):
//
//   TunerConfig cfg;
//   cfg.target_itl_ms = parse_target_itl_ms(getenv("PARALLAMA_TARGET_ITL"));  // if set
//   cfg.max_limit = stats["max_parallel"];       // what the runner's KV pool can run at all
//   Tuner tuner(cfg, stats["parallel"]);
//   StatsSample prev = sample_of(GET /stats);    // then every ~500 ms:
//   StatsSample cur = sample_of(GET /stats);
//   Decision d = tuner.observe(observation_between(prev, cur));
//   prev = cur;
//   if (d.changed) {
//     POST /parallel {"parallel": d.new_limit};  // if refused: tuner.sync_limit(actual)
//     log d.reason;  count a metric labelled cause_name(d.cause);
//   }
//   tuner.status() -> for /api/parallel, /metrics, the live page.
//
// Intervals should be about 500 ms: much shorter ones hold zero or one step each (the
// step time is 50-500 ms) and measure nothing; poll faster for metrics if needed, but
// feed the tuner the delta from a snapshot ~500 ms old. The observation counts in
// TunerConfig (holds, ages) assume that pace.
//
// A change of mode (admin sets a number, then "auto" again) or a new runner process
// should start a new Tuner from the limit in force: its memory of the step-time curve
// belongs to one process and one load situation.
//
// What it optimises. Per-token latency rises by design as the batch grows (each step
// computes one token for every running sequence), so a latency-gradient limiter would
// shrink the batch exactly when batching pays off. Instead the tuner learns the
// engine's step-time curve s(B) (ms per step at B running sequences) from the
// observations and moves the limit to the highest B such that
//   - the p90 inter-token latency at B (measured per token) stays under target_itl_ms,
//   - the B-th sequence still adds meaningful throughput: its marginal gain
//     g(B) = (T(B) - T(B-1)) / (T(B-1) / (B-1)), with T(B) = B / s(B) tokens per ms,
//     is at least min_gain. g is 1 while the step is memory bound (one more sequence
//     costs nothing) and 0 once it is compute bound (throughput flat), and
//   - the KV pool holds it without preemptions.
// It grows only when requests wait for a slot, backs off multiplicatively on a latency
// breach (the level's p90 over the target at two observations in a row, so one noisy
// interval does not cost a good level) or at once on preemptions, holds rejected levels down with an exponentially growing
// hold time (no flapping), and forgets the curve when the step time at a level moves by
// more than `drift` (another model took the CPU, or left it). docs/ARCHITECTURE.md,
// "Automatic parallelism tuner", has the rules and the reasons for them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tune/level_stats.h"

namespace pl::tune {

struct TunerConfig {
  double target_itl_ms = 250;  // p90 inter-token latency target (PARALLAMA_TARGET_ITL)
  int min_limit = 1;
  int max_limit = 1;           // the runner's max_parallel (what its KV pool can run at all)
  // Marginal throughput of one more sequence, relative to the average per-sequence
  // throughput at that level (g(B) above): below it, a sequence costs everyone latency
  // for too little throughput.
  double min_gain = 0.1;
  int window = 12;         // samples (observations) kept per batch size
  int min_samples = 4;     // samples at a level before it is judged
  int settle = 1;          // observations after a change that are not measured (admission, prefill)
  double backoff = 0.75;   // multiplicative decrease on a latency breach or preemptions
  int hold_obs = 40;       // a rejected level is not retried for this many observations,
  int hold_max_obs = 640;  //   doubled on each repeated rejection up to this
  int kv_hold_obs = 120;   // after preemptions the limit is capped this long (doubling likewise)
  double drift = 0.3;      // relative change of a level's step time that means the curve changed
  int recent_obs = 120;    // a level measured this recently may be returned to without a new probe
  int max_age_obs = 1200;  // samples older than this are forgotten
  int probe_timeout_obs = 40;  // a probe up that gets no measurements (demand fell) is undone
};

// One sampling interval: deltas of the runner's /stats counters between two polls, its
// gauges at the end, and the per-token gaps the caller measured in it. Inter-token
// latency is judged on those measured gaps (the server takes them from its streaming
// proxy: the time between consecutive tokens of each request, as clients see them),
// pooled over a level's window (LevelStats::view). Only when a level has too few of them
// (no caller measurement, or a handful of tokens) does the tuner estimate the p90 from
// the step times, which leave out the engine loop's work between forward passes and
// smooth single slow steps (a prefill chunk) that a per-token measurement shows.
struct Observation {
  double interval_ms = 0;          // wall time covered
  uint64_t steps = 0;              // forward passes
  uint64_t generated_tokens = 0;   // decode tokens sampled (one per running sequence per step)
  double step_ms_total = 0;        // time spent in those forward passes
  uint64_t preemptions = 0;        // sequences preempted for lack of KV blocks
  int running = 0;                 // gauges at the end of the interval
  int waiting = 0;
  int kv_blocks_used = 0;
  int kv_blocks_total = 0;
  std::vector<double> itl_ms;      // [n_gaps] measured inter-token gaps in the interval; may be empty
};

// One GET /stats snapshot (the fields of the runner's JSON of the same names) and the
// caller's monotonic clock when it was taken.
struct StatsSample {
  double t_ms = 0;
  int running = 0;
  int waiting = 0;
  int kv_blocks_used = 0;
  int kv_blocks_total = 0;
  uint64_t generated_tokens = 0;
  uint64_t steps = 0;
  double step_ms_total = 0;
  uint64_t preemptions = 0;
};

// Deltas from prev to cur. A counter that went down (the runner restarted) gives an
// interval with no steps, which the tuner treats as idle.
Observation observation_between(const StatsSample& prev, const StatsSample& cur);

// PARALLAMA_TARGET_ITL's value in milliseconds: "250", "250ms", "0.25s". Throws pl::Error
// for anything else or a value that is not positive.
double parse_target_itl_ms(std::string_view text);

// Why the limit changed; cause_name() is a short stable label for a metric.
enum class Cause {
  none,        // no change
  grow,        // requests wait and the next level looks worth it: probe it, or return to it
  latency,     // p90 inter-token latency over the target: multiplicative back-off
  kv,          // preemptions, the KV pool is exhausted: multiplicative back-off and a cap
  low_gain,    // the last sequence adds too little throughput: one level down
  probe_down,  // nothing measured below the current level to judge it: measure a lower one
  no_demand,   // a probe up could not be measured (demand fell): back to the last good level
};
const char* cause_name(Cause c);

struct Decision {
  bool changed = false;
  int new_limit = 0;       // the limit in force after this observation (== limit())
  Cause cause = Cause::none;
  std::string reason;      // one line for the log, empty when nothing changed
};

// Marginal gain g of a level's last sequence and its standard error.
struct Gain {
  double e = 0;
  double se = 0;
};

// What the tuner currently believes, for /api/parallel, the live page and metrics.
struct TunerStatus {
  int limit = 0;
  double itl_p90_ms = 0;        // at the current level, 0 if not measured
  bool itl_measured = false;    // itl_p90_ms from per-token gaps (else estimated from step times)
  double tokens_per_s = 0;      // generated tokens per second over the last observation
  std::optional<double> gain;   // marginal gain g at the current level, if measurable
  uint64_t n_changes = 0;
  uint64_t n_observations = 0;
  uint64_t n_curve_resets = 0;  // times a drift made it forget the step-time curve
  Cause last_cause = Cause::none;
  std::string last_reason;
};

class Tuner {
 public:
  // Throws pl::Error for an inconsistent configuration. initial_limit is clamped to
  // [min_limit, max_limit].
  Tuner(TunerConfig cfg, int initial_limit);

  Decision observe(const Observation& o);
  // The runner's limit is not the one decided (POST /parallel failed, or it was changed
  // behind the tuner's back): adopt it as if the tuner had moved there, cancelling any probe.
  void sync_limit(int actual);
  int limit() const { return limit_; }
  const TunerConfig& config() const { return cfg_; }
  TunerStatus status() const;

 private:
  enum class Probe { none, up, down };
  struct LevelState {
    int64_t until = 0;    // held down (not probed) until this observation
    int n_rejects = 0;    // consecutive rejections: the hold doubles with each
    bool passed = false;  // met the latency target as a probe or over a full window
  };

  Decision change(int new_limit, Cause cause, std::string reason);
  Decision keep() const;
  int64_t min_obs_fit() const;     // oldest observation still used for the curve
  int64_t min_obs_recent() const;  // oldest one that still counts as "just measured"
  void record(int level, double step_ms, double n_steps, const std::vector<double>& itl_ms);
  double latency_bar(int level) const;
  std::optional<Gain> marginal_gain(int level) const;
  std::optional<Gain> gain_over(int level, int w) const;  // fit over levels [level - w, level]
  bool acceptable(const Gain& g) const;
  double noise_rel() const;
  void hold_down(int level);
  int growth_ceiling(const Observation& o) const;
  std::optional<int> highest_good_below(int level) const;
  std::optional<Decision> check_kv(const Observation& o);
  std::optional<Decision> check_latency(int level);
  std::optional<Decision> check_probe(const Observation& o, bool demand);
  std::optional<Decision> steady(const Observation& o, bool demand);

  TunerConfig cfg_;
  int limit_;
  LevelStats stats_;
  std::vector<LevelState> levels_;  // [max_limit + 1], by level
  int64_t n_obs_ = 0;
  int64_t last_change_obs_ = -1000000;
  int64_t last_kv_obs_ = -1000000;
  int kv_cap_;
  int64_t kv_cap_until_ = 0;
  int kv_n_backoffs_ = 0;
  Probe probe_ = Probe::none;
  int probe_from_ = 0;
  int64_t probe_started_obs_ = 0;
  int prev_waiting_ = 0;
  int breach_level_ = 0;   // the level whose p90 was over its bar at the last observations
  int breach_streak_ = 0;  //   that measured it, and how many in a row
  std::string curve_note_;  // why the curve was forgotten, added to the next reason
  TunerStatus status_;
};

}  // namespace pl::tune
