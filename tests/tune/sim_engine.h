// A simulated engine for the tuner: continuous batching with a step-time curve
// s(B) = scale * (a + b*B + b_extra*max(0, B - knee)), a prefill cost per prompt token,
// lognormal noise or uniform jitter per step, a paged KV pool with preemption of the newest sequence, and
// closed-loop clients (each sends its next request think_ms after the last one ended).
// It exposes the runner's /stats counters and each sequence's inter-token gaps, so the
// tuner is fed exactly as in the server.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <vector>

#include "tune/tuner.h"

namespace pl::tune::sim {

struct Curve {
  double a_ms = 50;         // per step: the weights are read once for the whole batch
  double b_ms = 12;         // per running sequence, up to the knee
  int knee = 1 << 20;       // batch size where the step becomes compute bound
  double b_extra_ms = 0;    // extra per sequence beyond the knee
  double scale = 1;         // load factor (another model sharing the CPU: 2)
  double prefill_ms_per_token = 0;

  double step_ms(int batch) const;
  // Marginal gain of the B-th sequence as the tuner defines it (1 for B = 1).
  double gain(int batch) const;
};

// The best limit by construction: the highest B in [min, max] whose p90 step time meets
// the target and whose B-th sequence gains at least min_gain. With per-step lognormal
// noise of sigma `noise`, the p90 step time is s(B) * exp(1.2816 * noise).
int best_limit(const Curve& c, const TunerConfig& cfg, double noise = 0);
// The same for any per-step noise whose p90 factor (p90 step time / noise-free step time) is known.
int best_limit_p90(const Curve& c, const TunerConfig& cfg, double p90_factor);

struct Workload {
  int n_clients = 64;
  double think_ms = 0;
  int prompt_tokens = 32;
  int gen_min = 64;  // generated tokens, uniform in [gen_min, gen_max]
  int gen_max = 192;
};

struct Config {
  Curve curve;
  Workload load;
  double noise = 0.08;  // sigma of the per-step lognormal factor
  double jitter = 0;    // per-step uniform factor in [1 - jitter, 1 + jitter] (p90: 1 + 0.8 jitter)
  int kv_blocks_total = 1 << 20;
  int kv_block_size = 32;
  uint64_t seed = 1;
};

class Engine {
 public:
  Engine(Config cfg, int parallel);

  void set_parallel(int n) { parallel_ = n; }
  void set_curve(const Curve& c) { cfg_.curve = c; }
  // More clients start now; fewer: the extra ones stop after their current request.
  void set_clients(int n);
  // Runs until time t_ms and returns the /stats snapshot then: a step still in flight at
  // t_ms is not counted yet, as in the runner, which publishes after each step.
  StatsSample run_until(double t_ms);
  double now() const { return now_; }
  uint64_t preemptions() const { return preemptions_; }
  uint64_t generated() const { return generated_; }
  // The inter-token gaps (ms) of every sequence's tokens since the last call: what the
  // server's streaming proxy measures. A sequence's first token has no gap.
  std::vector<double> take_gaps();

 private:
  struct Seq {
    int client;
    int n_prompt;
    int n_gen_target;
    int n_generated = 0;
    int n_blocks = 0;
    bool prefilled = false;
    double last_token_ms = -1;  // when its previous token came out; -1 before the first
    int tokens() const { return n_prompt + n_generated; }
  };
  struct Client {
    bool active = true;
    bool busy = false;
    double next_ms = 0;
  };

  int blocks_for(int n_tokens) const { return (n_tokens + cfg_.kv_block_size - 1) / cfg_.kv_block_size; }
  void arrivals(double until_ms);
  void admit();
  bool start_step();   // plans the next step; false when idle
  void finish_step();
  void preempt_newest();
  StatsSample snapshot() const;

  Config cfg_;
  int parallel_;
  std::mt19937_64 rng_;
  std::vector<Client> clients_;
  std::deque<Seq> waiting_;
  std::vector<Seq> running_;  // admission order, newest at the back
  int kv_free_;
  double now_ = 0;
  bool in_flight_ = false;
  double step_end_ms_ = 0;
  double step_dur_ms_ = 0;
  uint64_t steps_ = 0, generated_ = 0, preemptions_ = 0;
  double step_ms_total_ = 0;
  std::vector<double> gaps_;  // since the last take_gaps()
};

// Polls the engine every interval_ms like the server does, feeds the tuner and applies
// its decisions; keeps the trajectory.
class Driver {
 public:
  struct Point {
    int obs;
    double t_ms;
    int limit;         // in force after this observation
    Observation o;
    Decision d;
  };
  // per_token: feed the tuner the interval's inter-token gaps, as the server does; false
  // leaves it to estimate latency from the step times.
  Driver(Engine& engine, Tuner& tuner, double interval_ms = 500, bool per_token = true);
  // Runs n observations; returns the points of this run.
  std::vector<Point> run(int n);
  const std::vector<Point>& trace() const { return trace_; }

 private:
  Engine& engine_;
  Tuner& tuner_;
  double interval_ms_;
  bool per_token_;
  StatsSample prev_;
  std::vector<Point> trace_;
};

}  // namespace pl::tune::sim
