// Prints the tuner's trajectory against the simulated engine (tests/tune/sim_engine.h),
// for the docs and for looking at a scenario by eye; --seeds N instead prints one
// summary line per seed (how often the limit was within one of the best).
//
//   tune_sim [scenario] [--start N] [--seed S] [--seeds N] [--noise X] [--obs N] [--every K]
//   scenarios: linear (latency-bound), knee (compute-bound), load (step times double,
//              then recover), demand (clients drop to 2, then return), kv (small KV pool)
#include <cstdio>
#include <cstdlib>
#include <string>

#include "sim_engine.h"

using namespace pl::tune;

namespace {

struct Options {
  std::string scenario = "linear";
  int start = 1;
  int n_obs = 400;
  int every = 10;
  uint64_t seed = 1;
  int n_seeds = 0;
  double noise = 0.08;
};

struct Summary {
  int n_scored = 0, n_within = 0, n_changes = 0, final_limit = 0, final_best = 0;
  int first_within = -1;  // first observation within one of the (first phase's) best
  uint64_t preemptions = 0;
};

// Runs one scenario; prints the trajectory when `print`. The limit is scored against the
// best from a quarter of the way through each phase on (time to converge).
Summary run(const Options& opt, uint64_t seed, bool print) {
  sim::Config sc;
  sc.noise = opt.noise;
  sc.seed = seed;
  const std::string& sn = opt.scenario;
  if (sn == "knee") {
    sc.curve = sim::Curve{40, 6, 10, 30};
  } else if (sn == "kv") {
    sc.kv_blocks_total = 48;  // 1536 tokens: 7 sequences of 32 + 128..256 tokens run without preemptions
    sc.load.gen_min = 128;
    sc.load.gen_max = 256;
    sc.curve.prefill_ms_per_token = 3;  // what a preempted sequence costs to recompute
  } else if (sn != "linear" && sn != "load" && sn != "demand") {
    std::fprintf(stderr, "unknown scenario %s\n", sn.c_str());
    std::exit(2);
  }
  TunerConfig tc;
  tc.max_limit = 48;
  sim::Engine engine(sc, opt.start);
  Tuner tuner(tc, opt.start);
  sim::Driver driver(engine, tuner);
  sim::Curve curve = sc.curve;
  int best = sim::best_limit(curve, tc, opt.noise);
  if (print) {
    std::printf("scenario %s: best limit %d (target %.0f ms, min gain %.2f, noise %.2f)\n", sn.c_str(), best,
                tc.target_itl_ms, tc.min_gain, opt.noise);
    std::printf("%6s %8s %6s %8s %8s %9s %9s\n", "obs", "t_s", "limit", "running", "waiting", "step_ms", "tok/s");
  }
  Summary sum;
  const int phase = sn == "load" || sn == "demand" ? opt.n_obs / 3 : opt.n_obs;
  for (int i = 0; i < opt.n_obs; ++i) {
    if (sn == "load" && (i == phase || i == 2 * phase)) {
      curve.scale = i == phase ? 2 : 1;
      engine.set_curve(curve);
      best = sim::best_limit(curve, tc, opt.noise);
      if (print) std::printf("-- step times x%.0f: best limit %d\n", curve.scale, best);
    }
    if (sn == "demand" && (i == phase || i == 2 * phase)) {
      engine.set_clients(i == phase ? 2 : 64);
      if (print) std::printf("-- %d clients\n", i == phase ? 2 : 64);
    }
    const sim::Driver::Point p = driver.run(1).front();
    if (print && p.d.changed)
      std::printf("       change -> %d [%s] %s\n", p.limit, cause_name(p.d.cause), p.d.reason.c_str());
    if (print && (i % opt.every == 0 || i + 1 == opt.n_obs))
      std::printf("%6d %8.1f %6d %8d %8d %9.1f %9.1f\n", p.obs, p.t_ms / 1000, p.limit, p.o.running, p.o.waiting,
                  p.o.steps ? p.o.step_ms_total / static_cast<double>(p.o.steps) : 0.0,
                  p.o.interval_ms > 0 ? static_cast<double>(p.o.generated_tokens) * 1000 / p.o.interval_ms : 0.0);
    const bool lull = sn == "demand" && i >= phase && i < 2 * phase;
    if (i % phase >= phase / 4 && !lull && sn != "kv") {
      sum.n_scored++;
      sum.n_within += std::abs(p.limit - best) <= 1;
    }
    sum.final_limit = p.limit;
    if (sum.first_within < 0 && std::abs(p.limit - best) <= 1) sum.first_within = i;
  }
  sum.final_best = best;
  sum.n_changes = static_cast<int>(tuner.status().n_changes);
  sum.preemptions = engine.preemptions();
  if (print)
    std::printf("preemptions %llu, changes %d, within one of the best %d/%d\n",
                static_cast<unsigned long long>(sum.preemptions), sum.n_changes, sum.n_within, sum.n_scored);
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--start") opt.start = std::atoi(next());
    else if (a == "--seed") opt.seed = std::strtoull(next(), nullptr, 10);
    else if (a == "--seeds") opt.n_seeds = std::atoi(next());
    else if (a == "--noise") opt.noise = std::atof(next());
    else if (a == "--obs") opt.n_obs = std::atoi(next());
    else if (a == "--every") opt.every = std::max(1, std::atoi(next()));
    else if (a[0] != '-') opt.scenario = a;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (opt.n_seeds <= 0) {
    run(opt, opt.seed, true);
    return 0;
  }
  for (int s = 0; s < opt.n_seeds; ++s) {
    const Summary r = run(opt, opt.seed + static_cast<uint64_t>(s), false);
    std::printf(
        "seed %3llu: first within one at obs %3d, within one %3d/%3d (%3.0f%%), final %2d best %2d, changes %3d, "
        "preemptions %llu\n",
        static_cast<unsigned long long>(opt.seed + static_cast<uint64_t>(s)), r.first_within, r.n_within, r.n_scored,
        r.n_scored ? 100.0 * r.n_within / r.n_scored : 0.0, r.final_limit, r.final_best, r.n_changes,
        static_cast<unsigned long long>(r.preemptions));
  }
  return 0;
}
