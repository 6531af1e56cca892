// The automatic parallelism tuner at work: OLLAMA_NUM_PARALLEL=auto, or
// POST /api/parallel {"num_parallel": "auto"} for one model.
//
// One thread, started and stopped with the Server, every 500 ms: for each
// ready runner in auto mode it reads the runner's GET /stats (the engine's
// published snapshot, never blocked by a step), feeds the counters' deltas and
// the inter-token gaps the proxy measured since the last tick (Metrics) to
// that model's pl::tune::Tuner (src/tune: the policy, with the reasons), and
// applies a decision through Scheduler::set_parallel(key, n, "auto"). Every
// change is logged with its reason and counted for /metrics. A new runner
// process (crash, reload) gets a new Tuner: the step-time curve it learnt
// belongs to one process.
#pragma once

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "sched/sched.h"
#include "server/metrics.h"
#include "tune/tuner.h"

namespace pl::server {

class AutoTuner {
 public:
  // env_auto: OLLAMA_NUM_PARALLEL=auto (models whose source is "auto" are tuned).
  // metrics (may be null; must outlive the tuner): the per-token gaps its proxy path
  // measured, which the tuner judges latency by; without it the tuner estimates
  // latency from the runner's step times.
  AutoTuner(sched::Scheduler& sched, tune::TunerConfig base, bool env_auto, const Metrics* metrics = nullptr);
  ~AutoTuner();  // stop()
  void start();
  void stop();

  void enable(const std::string& key);   // the admin API's "auto"
  void disable(const std::string& key);  // the admin API set a number
  // Per tuned model: limit, p90 ITL, tokens/s, changes, last cause and reason.
  nlohmann::json status() const;
  // Prometheus lines: parallama_tuner_limit, parallama_tuner_changes_total{cause}.
  std::string metrics_text() const;

 private:
  struct State;
  void loop();
  void tick();

  sched::Scheduler& sched_;
  tune::TunerConfig base_;
  bool env_auto_;
  const Metrics* metrics_;
  mutable std::mutex mu_;
  std::set<std::string> enabled_;                         // by the admin API
  std::map<std::string, std::unique_ptr<State>> states_;  // by model key
  std::map<std::pair<std::string, std::string>, uint64_t> changes_;  // (model, cause) -> count
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

// PARALLAMA_TARGET_ITL (default 250 ms) into a TunerConfig; pl::Error naming the variable.
tune::TunerConfig tuner_config_from_env();

}  // namespace pl::server
