#include "sim_engine.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace pl::tune::sim {

double Curve::step_ms(int batch) const {
  return scale * (a_ms + b_ms * batch + b_extra_ms * std::max(0, batch - knee));
}

double Curve::gain(int batch) const {
  if (batch <= 1) return 1.0;
  return batch * step_ms(batch - 1) / step_ms(batch) - (batch - 1);
}

int best_limit(const Curve& c, const TunerConfig& cfg, double noise) {
  return best_limit_p90(c, cfg, std::exp(1.2816 * noise));
}

int best_limit_p90(const Curve& c, const TunerConfig& cfg, double p90_factor) {
  int best = cfg.min_limit;
  for (int b = cfg.min_limit; b <= cfg.max_limit; ++b)
    if (c.step_ms(b) * p90_factor <= cfg.target_itl_ms && c.gain(b) >= cfg.min_gain) best = b;
  return best;
}

Engine::Engine(Config cfg, int parallel)
    : cfg_(cfg), parallel_(parallel), rng_(cfg.seed), kv_free_(cfg.kv_blocks_total) {
  set_clients(cfg_.load.n_clients);
}

void Engine::set_clients(int n) {
  cfg_.load.n_clients = n;
  int active = 0;
  for (Client& c : clients_) {
    if (c.active && active >= n) c.active = false;
    if (c.active) ++active;
  }
  for (Client& c : clients_)
    if (!c.active && active < n) {
      c.active = true;
      c.next_ms = std::max(c.next_ms, now_);
      ++active;
    }
  while (active < n) {
    clients_.push_back(Client{true, false, now_});
    ++active;
  }
}

void Engine::arrivals(double until_ms) {
  std::uniform_int_distribution<int> gen_len(cfg_.load.gen_min, cfg_.load.gen_max);
  for (size_t i = 0; i < clients_.size(); ++i) {
    Client& c = clients_[i];
    if (!c.active || c.busy || c.next_ms > until_ms) continue;
    c.busy = true;
    waiting_.push_back(Seq{static_cast<int>(i), cfg_.load.prompt_tokens, gen_len(rng_)});
  }
}

// FCFS while slots are free and the sequence's blocks fit without preempting anyone.
void Engine::admit() {
  while (static_cast<int>(running_.size()) < parallel_ && !waiting_.empty()) {
    Seq& s = waiting_.front();
    const int need = blocks_for(s.tokens() + 1);
    if (need > kv_free_) break;
    kv_free_ -= need;
    s.n_blocks = need;
    running_.push_back(s);
    waiting_.pop_front();
  }
}

void Engine::preempt_newest() {
  Seq s = running_.back();
  running_.pop_back();
  kv_free_ += s.n_blocks;
  s.n_blocks = 0;
  s.prefilled = false;
  waiting_.push_front(s);
  ++preemptions_;
}

bool Engine::start_step() {
  admit();
  // Each running sequence needs room for its next token; out of blocks, the newest goes.
  for (size_t i = 0; i < running_.size(); ++i) {
    const int need = blocks_for(running_[i].tokens() + 1) - running_[i].n_blocks;
    while (need > kv_free_ && i < running_.size()) preempt_newest();
    if (i >= running_.size()) break;
    kv_free_ -= need;
    running_[i].n_blocks += need;
  }
  if (running_.empty()) return false;
  int prefill_tokens = 0;
  for (const Seq& s : running_)
    if (!s.prefilled) prefill_tokens += s.tokens();
  const Curve& c = cfg_.curve;
  double dur = c.step_ms(static_cast<int>(running_.size())) + c.scale * c.prefill_ms_per_token * prefill_tokens;
  if (cfg_.noise > 0) dur *= std::exp(std::normal_distribution<double>(0.0, cfg_.noise)(rng_));
  if (cfg_.jitter > 0) dur *= std::uniform_real_distribution<double>(1 - cfg_.jitter, 1 + cfg_.jitter)(rng_);
  in_flight_ = true;
  step_dur_ms_ = dur;
  step_end_ms_ = now_ + dur;
  return true;
}

void Engine::finish_step() {
  in_flight_ = false;
  now_ = step_end_ms_;
  ++steps_;
  step_ms_total_ += step_dur_ms_;
  std::vector<Seq> still;
  still.reserve(running_.size());
  for (Seq& s : running_) {
    s.prefilled = true;
    if (s.last_token_ms >= 0) gaps_.push_back(now_ - s.last_token_ms);
    s.last_token_ms = now_;
    ++s.n_generated;
    ++generated_;
    if (s.n_generated < s.n_gen_target) {
      still.push_back(s);
      continue;
    }
    kv_free_ += s.n_blocks;
    Client& c = clients_[static_cast<size_t>(s.client)];
    c.busy = false;
    c.next_ms = now_ + cfg_.load.think_ms;
  }
  running_ = std::move(still);
}

StatsSample Engine::run_until(double t_ms) {
  while (true) {
    if (in_flight_) {
      if (step_end_ms_ > t_ms) break;
      finish_step();
      continue;
    }
    arrivals(now_);
    if (start_step()) continue;
    double next = std::numeric_limits<double>::infinity();
    for (const Client& c : clients_)
      if (c.active && !c.busy) next = std::min(next, c.next_ms);
    if (next > t_ms) {
      now_ = std::max(now_, t_ms);
      break;
    }
    now_ = std::max(now_, next);
  }
  StatsSample s = snapshot();
  s.t_ms = t_ms;
  return s;
}

StatsSample Engine::snapshot() const {
  StatsSample s;
  s.running = static_cast<int>(running_.size());
  s.waiting = static_cast<int>(waiting_.size());
  s.kv_blocks_total = cfg_.kv_blocks_total;
  s.kv_blocks_used = cfg_.kv_blocks_total - kv_free_;
  s.generated_tokens = generated_;
  s.steps = steps_;
  s.step_ms_total = step_ms_total_;
  s.preemptions = preemptions_;
  return s;
}

std::vector<double> Engine::take_gaps() {
  std::vector<double> out;
  out.swap(gaps_);
  return out;
}

Driver::Driver(Engine& engine, Tuner& tuner, double interval_ms, bool per_token)
    : engine_(engine), tuner_(tuner), interval_ms_(interval_ms), per_token_(per_token) {
  engine_.set_parallel(tuner_.limit());
  prev_ = engine_.run_until(engine_.now());
  engine_.take_gaps();
}

std::vector<Driver::Point> Driver::run(int n) {
  std::vector<Point> out;
  for (int i = 0; i < n; ++i) {
    const StatsSample cur = engine_.run_until(prev_.t_ms + interval_ms_);
    Observation o = observation_between(prev_, cur);
    std::vector<double> gaps = engine_.take_gaps();
    if (per_token_) o.itl_ms = std::move(gaps);
    prev_ = cur;
    const Decision d = tuner_.observe(o);
    if (d.changed) engine_.set_parallel(d.new_limit);
    out.push_back(Point{static_cast<int>(trace_.size()), cur.t_ms, tuner_.limit(), o, d});
    trace_.push_back(out.back());
  }
  return out;
}

}  // namespace pl::tune::sim
