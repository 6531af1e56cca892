#include "tune/tuner.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace pl::tune {

namespace {

// Newest samples of a level compared against its older ones to detect a curve change.
constexpr int kDriftSamples = 3;
constexpr double kDriftSigmas = 4;
// Above this fraction of the target, growth waits for a full window at the current level.
constexpr double kNearTarget = 0.85;
// Returning to a level known from earlier needs this much room under the target, so a
// level whose p90 hovers at the target is not left and re-entered on every noisy window.
constexpr double kReturnMargin = 0.97;
// A level that has passed (p90 under the target over a full window, or as a probe) is
// left for latency only when its p90 exceeds the target by this much: entering needs
// p90 <= target, leaving needs more, so a level whose p90 sits at the target does not
// flap on noise.
constexpr double kLatencyTolerance = 0.05;
// Observations in a row whose level's p90 is over its bar before the tuner backs off for
// latency: slow to abandon a level on one noisy sample, and a real breach costs 500 ms.
constexpr int kBreachStreak = 2;
// Smallest relative step-time noise assumed when weighing measurements.
constexpr double kMinRelNoise = 0.01;

std::string pct(double x) { return fmt::format("{:.0f}%", x * 100.0); }
std::string pct(const Gain& g) { return fmt::format("{:.0f}% +- {:.0f}%", g.e * 100.0, g.se * 100.0); }

int floor_mul(int n, double f) { return static_cast<int>(std::floor(static_cast<double>(n) * f)); }

}  // namespace

const char* cause_name(Cause c) {
  switch (c) {
    case Cause::none: return "none";
    case Cause::grow: return "grow";
    case Cause::latency: return "latency";
    case Cause::kv: return "kv";
    case Cause::low_gain: return "low_gain";
    case Cause::probe_down: return "probe_down";
    case Cause::no_demand: return "no_demand";
  }
  return "unknown";
}

double parse_target_itl_ms(std::string_view text) {
  std::string_view num = text;
  double scale = 1;
  if (num.ends_with("ms")) {
    num.remove_suffix(2);
  } else if (num.ends_with("s")) {
    num.remove_suffix(1);
    scale = 1000;
  }
  const std::string str(num);
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(str, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (str.empty() || used != str.size() || !std::isfinite(v) || v <= 0)
    fail("PARALLAMA_TARGET_ITL must be a positive duration such as 250ms or 0.25s, got '{}'", text);
  return v * scale;
}

Observation observation_between(const StatsSample& prev, const StatsSample& cur) {
  Observation o;
  o.interval_ms = std::max(0.0, cur.t_ms - prev.t_ms);
  const bool restarted = cur.steps < prev.steps || cur.generated_tokens < prev.generated_tokens ||
                         cur.step_ms_total < prev.step_ms_total || cur.preemptions < prev.preemptions;
  if (!restarted) {
    o.steps = cur.steps - prev.steps;
    o.generated_tokens = cur.generated_tokens - prev.generated_tokens;
    o.step_ms_total = cur.step_ms_total - prev.step_ms_total;
    o.preemptions = cur.preemptions - prev.preemptions;
  }
  o.running = cur.running;
  o.waiting = cur.waiting;
  o.kv_blocks_used = cur.kv_blocks_used;
  o.kv_blocks_total = cur.kv_blocks_total;
  return o;
}

Tuner::Tuner(TunerConfig cfg, int initial_limit)
    : cfg_(cfg), limit_(0), stats_(std::max(1, cfg.max_limit), std::max(1, cfg.window)), kv_cap_(cfg.max_limit) {
  if (!(cfg_.target_itl_ms > 0)) fail("tuner: target inter-token latency must be positive, got {} ms", cfg_.target_itl_ms);
  if (cfg_.min_limit < 1 || cfg_.max_limit < cfg_.min_limit)
    fail("tuner: limits must satisfy 1 <= min <= max, got min {} max {}", cfg_.min_limit, cfg_.max_limit);
  if (!(cfg_.min_gain >= 0 && cfg_.min_gain < 1)) fail("tuner: min_gain must be in [0, 1), got {}", cfg_.min_gain);
  if (cfg_.min_samples < 1 || cfg_.window < cfg_.min_samples)
    fail("tuner: need 1 <= min_samples <= window, got {} and {}", cfg_.min_samples, cfg_.window);
  if (!(cfg_.backoff > 0 && cfg_.backoff < 1)) fail("tuner: backoff must be in (0, 1), got {}", cfg_.backoff);
  if (cfg_.settle < 0 || cfg_.hold_obs < 1 || cfg_.hold_max_obs < cfg_.hold_obs || cfg_.kv_hold_obs < 1 ||
      cfg_.recent_obs < 1 || cfg_.max_age_obs < cfg_.recent_obs || cfg_.probe_timeout_obs < 1)
    fail("tuner: bad observation counts (settle {}, hold {}..{}, kv_hold {}, recent {}, max_age {}, probe_timeout {})",
         cfg_.settle, cfg_.hold_obs, cfg_.hold_max_obs, cfg_.kv_hold_obs, cfg_.recent_obs, cfg_.max_age_obs,
         cfg_.probe_timeout_obs);
  if (!(cfg_.drift > 0)) fail("tuner: drift must be positive, got {}", cfg_.drift);
  limit_ = std::clamp(initial_limit, cfg_.min_limit, cfg_.max_limit);
  levels_.resize(static_cast<size_t>(cfg_.max_limit) + 1);
  status_.limit = limit_;
}

int64_t Tuner::min_obs_fit() const { return n_obs_ - cfg_.max_age_obs; }
int64_t Tuner::min_obs_recent() const { return n_obs_ - cfg_.recent_obs; }

Decision Tuner::keep() const { return Decision{false, limit_, Cause::none, {}}; }

Decision Tuner::change(int new_limit, Cause cause, std::string reason) {
  PL_CHECK(new_limit >= cfg_.min_limit && new_limit <= cfg_.max_limit && new_limit != limit_,
           "tuner change {} -> {} outside [{}, {}]", limit_, new_limit, cfg_.min_limit, cfg_.max_limit);
  if (!curve_note_.empty()) {
    reason += " (" + curve_note_ + ")";
    curve_note_.clear();
  }
  limit_ = new_limit;
  last_change_obs_ = n_obs_;
  breach_streak_ = 0;
  status_.n_changes++;
  status_.last_cause = cause;
  status_.last_reason = reason;
  return Decision{true, new_limit, cause, std::move(reason)};
}

// Every level shares the machine, so when one level's step time moves for good, the
// whole curve moved: forget it and learn it again (the recovery path after a load change).
void Tuner::record(int level, double step_ms, double n_steps, const std::vector<double>& itl_ms) {
  stats_.add(level, Sample{n_obs_, step_ms, n_steps, std::vector<float>(itl_ms.begin(), itl_ms.end())});
  const std::optional<double> r = stats_.drift_ratio(level, kDriftSamples, min_obs_fit());
  if (!r) return;
  // On a noisy machine the medians of a few intervals move by more than `drift` by chance
  // (+-30% step jitter moves a median of three intervals by ~8%): the shift must also be
  // kDriftSigmas standard errors of the log-ratio of the two medians.
  const double n_old = static_cast<double>(stats_.step_samples(level, min_obs_fit()).size()) - kDriftSamples;
  const double se = 1.2533 * noise_rel() * std::sqrt(1.0 / kDriftSamples + 1.0 / std::max(1.0, n_old));
  if (std::fabs(std::log(*r)) <= std::max(std::log1p(cfg_.drift), kDriftSigmas * se)) return;
  const std::vector<Sample> keep_new = stats_.newest(level, kDriftSamples);
  stats_.clear_all();
  for (const Sample& s : keep_new) stats_.add(level, s);
  for (LevelState& h : levels_) h = LevelState{};
  status_.n_curve_resets++;
  curve_note_ = fmt::format("step time at {} running changed x{:.2f}: re-learning the step-time curve", level, *r);
}

// g(L) = 1 - L * s'(L) / s(L), the discrete marginal gain of the L-th sequence, with the
// slope s' fitted over the medians of the levels just below L. Neighbouring levels alone
// differ by about 1/L in throughput, which step-time noise swamps at larger L; a fit over
// the last third of the levels keeps the estimate's noise roughly constant in L. The
// points are weighted by the inverse variance of their medians, from the samples' pooled
// relative spread, which also gives the estimate's standard error.
//
// The wide fit blurs a sharp knee (one steep level among gentle ones), so the gain is
// also taken from the nearest level below alone. That narrow estimate's error is large at
// large L, so it is given two standard errors of benefit of the doubt and speaks only when
// clearly low, which is what a knee looks like; of the two, the one whose optimistic
// bound (e + se) is lower counts.
std::optional<Gain> Tuner::marginal_gain(int level) const {
  if (level <= 1) return Gain{1.0, 0.0};  // the first sequence is all gain
  const std::optional<Gain> wide = gain_over(level, std::max(2, (level + 2) / 3));
  std::optional<Gain> narrow = gain_over(level, 1);
  if (narrow) narrow->e += 2 * narrow->se;
  if (!wide || !narrow) return wide ? wide : narrow;
  return narrow->e + narrow->se < wide->e + wide->se ? narrow : wide;
}

std::optional<Gain> Tuner::gain_over(int level, int w) const {
  const LevelView at = stats_.view(level, min_obs_fit());
  if (at.n == 0 || at.step_ms <= 0) return std::nullopt;
  std::vector<std::pair<int, LevelView>> used{{level, at}};
  for (int l = std::max(1, level - w); l < level; ++l) {
    const LevelView v = stats_.view(l, min_obs_fit());
    if (v.n >= 2 && v.step_ms > 0) used.emplace_back(l, v);
  }
  if (used.size() < 2) return std::nullopt;
  const double sigma_rel = noise_rel();
  std::vector<FitPoint> pts;
  for (const auto& [l, v] : used) {
    // The variance of a median of n samples is about (pi/2) sigma^2 / n.
    const double sd = 1.2533 * sigma_rel * v.step_ms;
    pts.push_back({static_cast<double>(l), v.step_ms, v.n / (sd * sd)});
  }
  const std::optional<SlopeFit> fit = fit_slope(pts);
  if (!fit) return std::nullopt;
  const double k = static_cast<double>(level) / at.step_ms;
  return Gain{1.0 - k * fit->slope, k * fit->se};
}

// Pooled relative standard deviation of the interval step times around their level's
// median, over every measured level: the noise is the machine's, shared along the curve,
// and a few levels alone (a fit window often holds a handful of samples) can read it far
// too low and make a fit overconfident. Deviations are clipped at 3 robust (MAD) standard
// deviations so one stray interval does not inflate it; each level gives n - 1 degrees of
// freedom. The floor keeps a run of equal samples from claiming certainty.
double Tuner::noise_rel() const {
  std::vector<double> rel_dev;
  int dof = 0;
  for (int l = 1; l <= cfg_.max_limit; ++l) {
    const std::vector<double> xs = stats_.step_samples(l, min_obs_fit());
    if (xs.size() < 2) continue;
    const double med = median(xs);
    if (med <= 0) continue;
    for (double x : xs) rel_dev.push_back(std::fabs(x - med) / med);
    dof += static_cast<int>(xs.size()) - 1;
  }
  if (dof == 0) return kMinRelNoise;
  const double clip = 3 * std::max(kMinRelNoise, 1.4826 * median(rel_dev));
  double sum_sq = 0;
  for (double d : rel_dev) sum_sq += std::min(d, clip) * std::min(d, clip);
  return std::max(kMinRelNoise, std::sqrt(sum_sq / dof));
}

// A measured level clears the bar if its gain reaches min_gain within one standard error.
bool Tuner::acceptable(const Gain& g) const { return g.e + g.se >= cfg_.min_gain; }

void Tuner::hold_down(int level) {
  LevelState& h = levels_[static_cast<size_t>(level)];
  if (n_obs_ - h.until > cfg_.hold_max_obs) h.n_rejects = 0;  // long since the last rejection
  h.n_rejects++;
  h.passed = false;
  const int64_t span = std::min<int64_t>(cfg_.hold_max_obs, int64_t{cfg_.hold_obs} << std::min(h.n_rejects - 1, 20));
  h.until = n_obs_ + span;
}

// The highest level growth may reach now: the configured maximum, the KV cap after
// preemptions, any held-down level above (a level above a rejected one is no better), and
// what the KV pool would hold if new sequences needed as many blocks as the running ones.
int Tuner::growth_ceiling(const Observation& o) const {
  int ceiling = std::min(cfg_.max_limit, kv_cap_);
  for (int l = limit_ + 1; l <= ceiling; ++l)
    if (levels_[static_cast<size_t>(l)].until > n_obs_) {
      ceiling = l - 1;
      break;
    }
  if (o.running > 0 && o.kv_blocks_total > 0 && o.kv_blocks_used > 0) {
    const double per_seq = static_cast<double>(o.kv_blocks_used) / o.running;
    const int fits = o.running + static_cast<int>(std::floor((o.kv_blocks_total - o.kv_blocks_used) / per_seq));
    ceiling = std::min(ceiling, std::max(limit_, fits));
  }
  return ceiling;
}

std::optional<int> Tuner::highest_good_below(int level) const {
  for (int l = level - 1; l >= cfg_.min_limit; --l) {
    const LevelView v = stats_.view(l, min_obs_fit());
    if (v.n >= cfg_.min_samples && v.itl_p90_ms <= cfg_.target_itl_ms) return l;
  }
  return std::nullopt;
}

std::optional<Decision> Tuner::check_kv(const Observation& o) {
  if (n_obs_ - last_kv_obs_ > cfg_.hold_max_obs) kv_n_backoffs_ = 0;
  // More running than the limit: still draining from a higher one, whose preemptions these are.
  if (o.preemptions == 0 || o.running > limit_) return std::nullopt;
  const int base = std::min(limit_, std::max(o.running, 1));
  const int nl = std::max(cfg_.min_limit, std::min(limit_ - 1, floor_mul(base, cfg_.backoff)));
  if (nl >= limit_) return std::nullopt;
  kv_n_backoffs_++;
  last_kv_obs_ = n_obs_;
  const int64_t span =
      std::min<int64_t>(cfg_.hold_max_obs, int64_t{cfg_.kv_hold_obs} << std::min(kv_n_backoffs_ - 1, 20));
  // The cut is multiplicative (quick relief); the cap is one under where the pool ran out,
  // so growth may climb back to the highest level that fits, but not retry this one soon.
  kv_cap_ = std::max(nl, base - 1);
  kv_cap_until_ = n_obs_ + span;
  probe_ = Probe::none;
  return change(nl, Cause::kv,
                fmt::format("kv: {} preemption(s) with {} running, KV pool {}/{} blocks used; limit {} -> {}, "
                            "at most {} for {} observations",
                            o.preemptions, o.running, o.kv_blocks_used, o.kv_blocks_total, limit_, nl, kv_cap_, span));
}

// Entering a level needs p90 <= target; a level that has passed is left only when its p90
// exceeds the target by kLatencyTolerance (see there).
double Tuner::latency_bar(int level) const {
  return cfg_.target_itl_ms * (levels_[static_cast<size_t>(level)].passed ? 1.0 + kLatencyTolerance : 1.0);
}

// A level at or under the limit whose p90 latency is over the target: back off
// multiplicatively, by target/p90 when that is the larger cut (latency grows at most in
// proportion to the batch, so this does not undershoot by much, and a limit far too high
// comes down in one move instead of one slow drain per factor), but not below the highest
// level just measured to meet the target.
std::optional<Decision> Tuner::check_latency(int level) {
  if (level > limit_) return std::nullopt;  // draining from a higher limit
  const LevelView v = stats_.view(level, min_obs_fit());
  if (v.n < cfg_.min_samples || v.itl_p90_ms <= latency_bar(level)) return std::nullopt;
  // One breach may be one noisy interval (a stray prefill, the machine's other work):
  // act when the next observation that measures the level confirms it.
  if (breach_level_ != level || breach_streak_ < kBreachStreak) return std::nullopt;
  // Rounded up: at small limits rounding down would cut far more than the factor (5 -> 3).
  int nl = static_cast<int>(std::ceil(level * std::min(cfg_.backoff, cfg_.target_itl_ms / v.itl_p90_ms)));
  if (const std::optional<int> good = highest_good_below(level)) nl = std::max(nl, *good);
  nl = std::max(cfg_.min_limit, std::min(nl, level - 1));
  if (nl >= limit_) return std::nullopt;
  hold_down(level);
  probe_ = Probe::none;
  return change(nl, Cause::latency,
                fmt::format("latency: p90 inter-token {:.0f} ms at {} running > target {:.0f} ms; limit {} -> {}",
                            v.itl_p90_ms, level, cfg_.target_itl_ms, limit_, nl));
}

std::optional<Decision> Tuner::check_probe(const Observation& o, bool demand) {
  const bool saturated = o.running >= limit_;
  const LevelView v = stats_.view(limit_, probe_started_obs_);
  const bool timed_out = !saturated && n_obs_ - probe_started_obs_ > cfg_.probe_timeout_obs;
  if (probe_ == Probe::up) {
    if (v.n < cfg_.min_samples) {
      if (!timed_out) return std::nullopt;
      probe_ = Probe::none;
      return change(probe_from_, Cause::no_demand,
                    fmt::format("no demand: {} running could not measure the probe of {}; limit {} -> {}", o.running,
                                limit_, limit_, probe_from_));
    }
    if (std::optional<Decision> d = check_latency(limit_)) return d;
    const std::optional<Gain> g = marginal_gain(limit_);
    if (g && !acceptable(*g)) {
      probe_ = Probe::none;
      hold_down(limit_);
      return change(probe_from_, Cause::low_gain,
                    fmt::format("low gain: at {} running (step {:.0f} ms) the last sequence adds {} of a sequence's "
                                "throughput < {}; limit {} -> {}",
                                limit_, v.step_ms, pct(*g), pct(cfg_.min_gain), limit_, probe_from_));
    }
    // Close to the target the probe stays on probation (strict latency bar) for a full window.
    if (v.itl_p90_ms > kNearTarget * cfg_.target_itl_ms && v.n < cfg_.window) return std::nullopt;
    probe_ = Probe::none;
    levels_[static_cast<size_t>(limit_)].passed = true;
    return std::nullopt;  // accepted (its rejection count stays: a level that fails again is held longer)
  }
  // Probe down: the lower level is measured, so the one we came from can now be judged.
  if (v.n < cfg_.min_samples) {
    if (timed_out) probe_ = Probe::none;
    return std::nullopt;
  }
  probe_ = Probe::none;
  const int from = probe_from_;
  const LevelView vf = stats_.view(from, min_obs_recent());
  const std::optional<Gain> g = marginal_gain(from);
  if (demand && saturated && from <= growth_ceiling(o) && vf.n >= cfg_.min_samples &&
      vf.itl_p90_ms <= kReturnMargin * cfg_.target_itl_ms && g && acceptable(*g))
    return change(from, Cause::grow,
                  fmt::format("grow: measured {} (step {:.0f} ms) against {} (step {:.0f} ms, p90 {:.0f} ms): the "
                              "last sequence adds {} of a sequence's throughput; limit {} -> {}",
                              limit_, v.step_ms, from, vf.step_ms, vf.itl_p90_ms, pct(*g), limit_, from));
  return std::nullopt;
}

std::optional<Decision> Tuner::steady(const Observation& o, bool demand) {
  // Not saturated: nothing to learn about the limit. More than the limit: still draining.
  if (o.running != limit_) return std::nullopt;
  const LevelView v = stats_.view(limit_, min_obs_fit());
  if (v.n < cfg_.min_samples) return std::nullopt;
  // Over the bar but not yet confirmed (check_latency): no other move until it is, or clears.
  if (v.itl_p90_ms > latency_bar(limit_)) return std::nullopt;
  if (v.n >= cfg_.window && v.itl_p90_ms <= cfg_.target_itl_ms) levels_[static_cast<size_t>(limit_)].passed = true;
  const std::optional<Gain> g = marginal_gain(limit_);
  if (!g && limit_ > cfg_.min_limit) {
    if (!demand) return std::nullopt;
    const int to = std::max(cfg_.min_limit, std::min(limit_ - 1, floor_mul(limit_, cfg_.backoff)));
    probe_ = Probe::down;
    probe_from_ = limit_;
    probe_started_obs_ = n_obs_ + 1;
    return change(to, Cause::probe_down,
                  fmt::format("probe: nothing measured below {} to tell whether its last sequences pay off; "
                              "limit {} -> {} to measure",
                              limit_, limit_, to));
  }
  // Hysteresis: a level is left for low gain only when its gain is under the bar by more
  // than twice its standard error (a probe only had to reach it within one), and for a
  // level that has passed, only on the wide fit: a knee shows when it is first probed,
  // and re-asking the noisy narrow estimate every interval would find a false one.
  const bool passed = levels_[static_cast<size_t>(limit_)].passed;
  const std::optional<Gain> judge = passed ? gain_over(limit_, std::max(2, (limit_ + 2) / 3)) : g;
  if (judge && judge->e + 2 * judge->se < cfg_.min_gain && limit_ > cfg_.min_limit) {
    hold_down(limit_);
    return change(limit_ - 1, Cause::low_gain,
                  fmt::format("low gain: at {} running (step {:.0f} ms) the last sequence adds {} of a sequence's "
                              "throughput < {}; limit {} -> {}",
                              limit_, v.step_ms, pct(*judge), pct(cfg_.min_gain), limit_, limit_ - 1));
  }
  // Growth needs the current level's gain not clearly under the bar (within one standard
  // error, as for a probe): with few levels measured the estimate is wide, and probing is
  // how it narrows; a level that then fails is held down.
  if (!demand || v.itl_p90_ms > cfg_.target_itl_ms || (g && !acceptable(*g))) return std::nullopt;
  // Close to the target, a p90 from a few samples is not enough to build on.
  if (v.itl_p90_ms > kNearTarget * cfg_.target_itl_ms && v.n < cfg_.window) return std::nullopt;
  const int ceiling = growth_ceiling(o);
  if (ceiling <= limit_) return std::nullopt;
  int step = 1;
  // Far under the target and strongly parallel: a quarter more at once, if the local
  // slope predicts the latency stays well under the target.
  if (g && g->e >= 2 * cfg_.min_gain && limit_ >= 4) {
    const int big = limit_ / 4;
    const double slope = (1.0 - g->e) * v.step_ms / limit_;
    const double predicted = v.itl_p90_ms * (v.step_ms + slope * big) / v.step_ms;
    if (predicted <= 0.8 * cfg_.target_itl_ms) step = big;
  }
  const int up = std::min(ceiling, limit_ + step);
  const LevelView vu = stats_.view(up, min_obs_recent());
  const std::string why =
      fmt::format("{} waiting; at {} running p90 inter-token {:.0f} ms <= {:.0f} ms and the last sequence adds {}",
                  o.waiting, limit_, v.itl_p90_ms, cfg_.target_itl_ms, g ? pct(*g) : std::string("?"));
  // Measured recently and clearly good: go there. Anything else is probed afresh (a level
  // that failed is held down above, so when it is tried again its old numbers are stale).
  if (vu.n >= cfg_.window && vu.itl_p90_ms <= kReturnMargin * cfg_.target_itl_ms) {
    const std::optional<Gain> gu = marginal_gain(up);
    if (gu && acceptable(*gu))
      return change(up, Cause::grow,
                    fmt::format("grow: {}; {} was measured recently (p90 {:.0f} ms, gain {}); limit {} -> {}", why, up,
                                vu.itl_p90_ms, pct(*gu), limit_, up));
  }
  stats_.clear(up);
  probe_ = Probe::up;
  probe_from_ = limit_;
  probe_started_obs_ = n_obs_ + 1;
  return change(up, Cause::grow, fmt::format("grow: {}; limit {} -> {} (probe)", why, limit_, up));
}

Decision Tuner::observe(const Observation& o) {
  ++n_obs_;
  status_.n_observations++;
  status_.tokens_per_s = o.interval_ms > 0 ? static_cast<double>(o.generated_tokens) * 1000.0 / o.interval_ms : 0;

  // The interval's batch size is tokens per step (each running sequence gets one per step);
  // intervals right after a change (admission, prefill) and ones whose batch moved a lot
  // are not a clean measurement of any level.
  std::optional<int> level;
  if (o.steps > 0 && o.generated_tokens > 0 && o.step_ms_total > 0) {
    const double step_ms = o.step_ms_total / static_cast<double>(o.steps);
    const double batch = static_cast<double>(o.generated_tokens) / static_cast<double>(o.steps);
    const int b = static_cast<int>(std::lround(batch));
    if (n_obs_ > last_change_obs_ + cfg_.settle && b >= 1 && b <= cfg_.max_limit && std::fabs(batch - o.running) <= 1.5) {
      record(b, step_ms, static_cast<double>(o.steps), o.itl_ms);
      level = b;
    }
  }
  // The breach streak counts observations that added a sample to the level; any other
  // level measured, or this one under its bar, starts it again.
  if (level) {
    const LevelView lv = stats_.view(*level, min_obs_fit());
    const bool over = lv.n >= cfg_.min_samples && lv.itl_p90_ms > latency_bar(*level);
    breach_streak_ = over ? (breach_level_ == *level ? breach_streak_ + 1 : 1) : 0;
    breach_level_ = *level;
  }
  if (kv_cap_ < cfg_.max_limit && n_obs_ >= kv_cap_until_) kv_cap_ = cfg_.max_limit;
  // Requests waiting now and at the previous poll: a lasting queue, not one arrival.
  const bool demand = o.waiting > 0 && prev_waiting_ > 0;
  prev_waiting_ = o.waiting;

  std::optional<Decision> d = check_kv(o);
  if (!d && level) d = check_latency(*level);
  if (!d && n_obs_ > last_change_obs_ + cfg_.settle)
    d = probe_ != Probe::none ? check_probe(o, demand) : steady(o, demand);

  const LevelView v = stats_.view(limit_, min_obs_fit());
  status_.limit = limit_;
  status_.itl_p90_ms = v.n > 0 ? v.itl_p90_ms : 0;
  status_.itl_measured = v.n > 0 && v.measured;
  status_.gain.reset();
  if (v.n > 0)
    if (const std::optional<Gain> g = marginal_gain(limit_)) status_.gain = g->e;
  return d ? *d : keep();
}

void Tuner::sync_limit(int actual) {
  const int n = std::clamp(actual, cfg_.min_limit, cfg_.max_limit);
  if (n == limit_) return;
  limit_ = n;
  last_change_obs_ = n_obs_;
  probe_ = Probe::none;
  status_.limit = n;
}

TunerStatus Tuner::status() const { return status_; }

}  // namespace pl::tune
