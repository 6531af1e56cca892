// The tuner's picture of the engine's step-time curve: the most recent measurements
// per batch size, and the robust statistics it judges a level by.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace pl::tune {

constexpr int kPoolRadius = 2;

// Measured per-token gaps pooled over a level's window before its p90 is trusted; with
// fewer (one sequence at slow steps gives two or three per interval) the p90 comes from
// the step times.
constexpr int kMinMeasuredGaps = 16;
// An interval whose own p90 is this many times the median interval's is an outlier.
constexpr double kOutlierFactor = 1.5;

struct Sample {
  int64_t obs;                // index of the observation that produced it
  double step_ms;             // mean step time of that interval
  double n_steps;             // steps in that interval
  std::vector<float> itl_ms;  // [n_gaps] measured inter-token gaps of the interval, empty if not measured
};

// A level's samples taken after some observation: median step time (robust to the odd
// slow interval) and p90 inter-token latency (what the target is about).
//
// With per-token measurements (at least kMinMeasuredGaps gaps over the window) the p90
// is that of the window's measured gaps pooled: the latency users saw, including what
// step times leave out (prefill chunks of newly admitted requests stalling the batch,
// sampling, streaming). The interval with the highest p90 of its own is left out of the
// pool when it is an outlier (over kOutlierFactor times the median interval's p90, with
// at least three measured): one slow interval (a stray prefill, the machine's other work)
// would otherwise hold a tenth of a small pool and the level's p90 with it for a whole
// window, while a real breach shows in the other intervals too.
//
// Without a per-token measurement the p90 comes from the step times. A sample is an
// interval's mean over n steps, whose spread is the per-step spread / sqrt(n); so each
// sample's relative deviation from its level's median is scaled back up by sqrt(n), and
// the 90th percentile of those residuals, pooled with the kPoolRadius levels below (a
// dozen samples alone give a p90 too noisy to hold a limit steady), is applied to the
// level's median. Taken over interval means directly, the p90 would read a
// few percent low and let the limit settle where single tokens miss the target.
struct LevelView {
  int n = 0;
  double step_ms = 0;     // median
  double itl_p90_ms = 0;  // linear interpolation between order statistics
  bool measured = false;  // itl_p90_ms from per-token gaps (else from step times)
  int64_t newest_obs = -1;
};

struct FitPoint {
  double x;  // batch size
  double y;  // median step time at that size
  double w;  // weight: 1 / variance of y
};

struct SlopeFit {
  double slope;
  double se;  // standard error of the slope, given weights that are inverse variances
};

class LevelStats {
 public:
  // Levels 1..max_level; each keeps its newest `window` samples.
  LevelStats(int max_level, int window);

  int max_level() const { return static_cast<int>(rings_.size()) - 1; }
  void add(int level, const Sample& s);
  void clear(int level);
  void clear_all();
  LevelView view(int level, int64_t min_obs) const;
  // Median step time of the newest n_new samples over the median of the older ones
  // (taken after min_obs); nullopt until there are n_new new and n_new older samples.
  std::optional<double> drift_ratio(int level, int n_new, int64_t min_obs) const;
  // The newest n samples of a level, oldest first.
  std::vector<Sample> newest(int level, int n) const;
  // Step times of a level's samples taken after min_obs.
  std::vector<double> step_samples(int level, int64_t min_obs) const;

 private:
  std::vector<std::deque<Sample>> rings_;  // [max_level + 1] by level, oldest at the front
  int window_;
};

double median(std::vector<double> v);
// q in [0, 1]; linear interpolation between order statistics (q = 0.9 of 8 values lies
// between the 7th and 8th, so one outlier moves it by a third of its excess at most).
double quantile(std::vector<double> v, double q);
// Weighted least-squares slope dy/dx; nullopt with fewer than two distinct x.
std::optional<SlopeFit> fit_slope(const std::vector<FitPoint>& pts);

}  // namespace pl::tune
