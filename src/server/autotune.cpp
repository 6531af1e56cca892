#include "server/autotune.h"

#include <cstdlib>

#include "core/env.h"
#include "core/error.h"
#include "server/metrics.h"

namespace pl::server {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kInterval = std::chrono::milliseconds(500);

double now_ms() {
  return std::chrono::duration<double, std::milli>(Clock::now().time_since_epoch()).count();
}

bool read_stats(int port, tune::StatsSample& out, int& parallel, int& max_parallel) {
  EngineGauges g;
  EngineCounters c;
  if (!read_runner_stats(port, std::chrono::seconds(1), g, c)) return false;
  out.t_ms = now_ms();
  out.running = g.running;
  out.waiting = g.waiting;
  out.kv_blocks_used = g.kv_blocks_used;
  out.kv_blocks_total = g.kv_blocks_total;
  out.generated_tokens = c.generated_tokens;
  out.steps = c.steps;
  out.step_ms_total = c.step_ms_total;
  out.preemptions = c.preemptions;
  parallel = g.parallel;
  max_parallel = g.max_parallel;
  return true;
}

}  // namespace

struct AutoTuner::State {
  int pid = 0;
  std::unique_ptr<tune::Tuner> tuner;
  tune::StatsSample prev;
  Clock::time_point prev_at;  // when prev was read: the start of the next interval's gaps
};

tune::TunerConfig tuner_config_from_env() {
  tune::TunerConfig c;
  if (auto v = env_var("PARALLAMA_TARGET_ITL")) {
    try {
      c.target_itl_ms = tune::parse_target_itl_ms(*v);
    } catch (const Error& e) {
      fail("PARALLAMA_TARGET_ITL: {}", e.what());
    }
  }
  return c;
}

AutoTuner::AutoTuner(sched::Scheduler& sched, tune::TunerConfig base, bool env_auto, const Metrics* metrics)
    : sched_(sched), base_(base), env_auto_(env_auto), metrics_(metrics) {}

AutoTuner::~AutoTuner() { stop(); }

void AutoTuner::start() {
  thread_ = std::thread([this] { loop(); });
}

void AutoTuner::stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AutoTuner::enable(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  enabled_.insert(key);
  states_.erase(key);  // a new mode: a new tuner from the limit in force
}

void AutoTuner::disable(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  enabled_.erase(key);
  states_.erase(key);
}

void AutoTuner::loop() {
  std::unique_lock<std::mutex> lock(stop_mu_);
  while (!stop_cv_.wait_for(lock, kInterval, [&] { return stopping_; })) {
    lock.unlock();
    try {
      tick();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tuner: %s\n", e.what());
    }
    lock.lock();
  }
}

void AutoTuner::tick() {
  for (const auto& r : sched_.ps()) {
    if (!r.ready || r.parallel_source == "forced-1") continue;
    bool on;
    {
      std::lock_guard<std::mutex> lock(mu_);
      on = enabled_.count(r.key) > 0 || (env_auto_ && r.parallel_source == "auto");
      if (!on) states_.erase(r.key);
    }
    if (!on) continue;
    tune::StatsSample cur;
    int parallel = 0, max_parallel = 0;
    if (!read_stats(r.port, cur, parallel, max_parallel)) continue;
    const Clock::time_point at = Clock::now();
    tune::Decision d;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& st = states_[r.key];
      if (!st || st->pid != r.pid) {
        st = std::make_unique<State>();
        st->pid = r.pid;
        tune::TunerConfig cfg = base_;
        cfg.max_limit = std::max(cfg.min_limit, max_parallel);
        st->tuner = std::make_unique<tune::Tuner>(cfg, parallel);
        st->prev = cur;
        st->prev_at = at;
        continue;
      }
      if (parallel != st->tuner->limit()) st->tuner->sync_limit(parallel);
      tune::Observation o = tune::observation_between(st->prev, cur);
      if (metrics_ != nullptr) o.itl_ms = metrics_->inter_token_gaps_ms(r.key, st->prev_at, at);
      d = st->tuner->observe(o);
      st->prev = cur;
      st->prev_at = at;
    }
    if (!d.changed) continue;
    try {
      sched_.set_parallel(r.key, d.new_limit, "auto");
      std::lock_guard<std::mutex> lock(mu_);
      ++changes_[{r.key, tune::cause_name(d.cause)}];
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = states_.find(r.key); it != states_.end()) it->second->tuner->sync_limit(parallel);
      std::fprintf(stderr, "tuner: %s: could not apply %d: %s\n", r.key.c_str(), d.new_limit, e.what());
      continue;
    }
    std::fprintf(stderr, "tuner: %s: %s\n", r.key.c_str(), d.reason.c_str());
  }
}

json AutoTuner::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  json out = json::object();
  for (const auto& [key, st] : states_) {
    const tune::TunerStatus s = st->tuner->status();
    out[key] = json{{"limit", s.limit},
                    {"itl_p90_ms", s.itl_p90_ms},
                    {"itl_measured", s.itl_measured},
                    {"tokens_per_s", s.tokens_per_s},
                    {"changes", s.n_changes},
                    {"last_cause", tune::cause_name(s.last_cause)},
                    {"last_reason", s.last_reason},
                    {"target_itl_ms", st->tuner->config().target_itl_ms}};
  }
  return out;
}

std::string AutoTuner::metrics_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out += "# HELP parallama_tuner_limit The parallel limit the automatic tuner has set.\n";
  out += "# TYPE parallama_tuner_limit gauge\n";
  for (const auto& [key, st] : states_)
    out += fmt::format("parallama_tuner_limit{{model=\"{}\"}} {}\n", key, st->tuner->limit());
  out += "# HELP parallama_tuner_changes_total Limit changes made by the automatic tuner, by cause.\n";
  out += "# TYPE parallama_tuner_changes_total counter\n";
  for (const auto& [k, n] : changes_)
    out += fmt::format("parallama_tuner_changes_total{{model=\"{}\",cause=\"{}\"}} {}\n", k.first, k.second, n);
  return out;
}

}  // namespace pl::server
