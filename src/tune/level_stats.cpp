#include "tune/level_stats.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "core/error.h"

namespace pl::tune {

LevelStats::LevelStats(int max_level, int window) : rings_(static_cast<size_t>(max_level) + 1), window_(window) {
  PL_CHECK(max_level >= 1 && window >= 1, "max_level {} window {}", max_level, window);
}

void LevelStats::add(int level, const Sample& s) {
  PL_CHECK(level >= 1 && level <= max_level(), "level {} outside [1, {}]", level, max_level());
  auto& r = rings_[static_cast<size_t>(level)];
  r.push_back(s);
  while (static_cast<int>(r.size()) > window_) r.pop_front();
}

void LevelStats::clear(int level) {
  PL_CHECK(level >= 1 && level <= max_level(), "level {} outside [1, {}]", level, max_level());
  rings_[static_cast<size_t>(level)].clear();
}

void LevelStats::clear_all() {
  for (auto& r : rings_) r.clear();
}

LevelView LevelStats::view(int level, int64_t min_obs) const {
  LevelView v;
  if (level < 1 || level > max_level()) return v;
  std::vector<double> steps, interval_p90s;
  const Sample* worst = nullptr;  // the measured interval with the highest p90 of its own
  double worst_p90 = 0;
  for (const Sample& s : rings_[static_cast<size_t>(level)]) {
    if (s.obs < min_obs) continue;
    steps.push_back(s.step_ms);
    v.newest_obs = std::max(v.newest_obs, s.obs);
    if (s.itl_ms.empty()) continue;
    interval_p90s.push_back(quantile(std::vector<double>(s.itl_ms.begin(), s.itl_ms.end()), 0.9));
    if (!worst || interval_p90s.back() > worst_p90) worst = &s, worst_p90 = interval_p90s.back();
  }
  v.n = static_cast<int>(steps.size());
  if (v.n == 0) return v;
  v.step_ms = median(steps);
  // A lone outlier interval is left out: a latency that only one interval of the window
  // saw is noise, one that the others share still shows. Ordinary spread is kept (dropping
  // the worst interval every time would bias the p90 low).
  if (interval_p90s.size() < 3 || worst_p90 <= kOutlierFactor * median(interval_p90s)) worst = nullptr;
  std::vector<double> gaps;
  for (const Sample& s : rings_[static_cast<size_t>(level)])
    if (s.obs >= min_obs && &s != worst) gaps.insert(gaps.end(), s.itl_ms.begin(), s.itl_ms.end());
  if (static_cast<int>(gaps.size()) >= kMinMeasuredGaps) {
    v.itl_p90_ms = quantile(std::move(gaps), 0.9);
    v.measured = true;
    return v;
  }
  // Per-step relative residuals of this level and the ones just below (the spread of the
  // step time changes slowly with the batch), applied to this level's median. Not the ones
  // above: those are often probes that failed, and must not drag a good level with them.
  std::vector<double> residuals;
  for (int l = std::max(1, level - kPoolRadius); l <= level; ++l) {
    std::vector<double> xs;
    for (const Sample& s : rings_[static_cast<size_t>(l)])
      if (s.obs >= min_obs) xs.push_back(s.step_ms);
    if (xs.empty()) continue;
    const double med = l == level ? v.step_ms : median(xs);
    for (const Sample& s : rings_[static_cast<size_t>(l)])
      if (s.obs >= min_obs) residuals.push_back((s.step_ms - med) / med * std::sqrt(std::max(1.0, s.n_steps)));
  }
  v.itl_p90_ms = v.step_ms * (1.0 + quantile(std::move(residuals), 0.9));
  return v;
}

std::optional<double> LevelStats::drift_ratio(int level, int n_new, int64_t min_obs) const {
  if (level < 1 || level > max_level()) return std::nullopt;
  std::vector<double> all;
  for (const Sample& s : rings_[static_cast<size_t>(level)])
    if (s.obs >= min_obs) all.push_back(s.step_ms);
  const int n = static_cast<int>(all.size());
  if (n < 2 * n_new) return std::nullopt;
  std::vector<double> old_part(all.begin(), all.end() - n_new), new_part(all.end() - n_new, all.end());
  const double m_old = median(std::move(old_part));
  if (m_old <= 0) return std::nullopt;
  return median(std::move(new_part)) / m_old;
}

std::vector<Sample> LevelStats::newest(int level, int n) const {
  if (level < 1 || level > max_level()) return {};
  const auto& r = rings_[static_cast<size_t>(level)];
  const int k = std::min(n, static_cast<int>(r.size()));
  return std::vector<Sample>(r.end() - k, r.end());
}

std::vector<double> LevelStats::step_samples(int level, int64_t min_obs) const {
  std::vector<double> out;
  if (level < 1 || level > max_level()) return out;
  for (const Sample& s : rings_[static_cast<size_t>(level)])
    if (s.obs >= min_obs) out.push_back(s.step_ms);
  return out;
}

double median(std::vector<double> v) { return quantile(std::move(v), 0.5); }

double quantile(std::vector<double> v, double q) {
  PL_CHECK(!v.empty(), "quantile of nothing");
  // Two selections instead of a sort: a level's pooled per-token gaps run to thousands.
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(lo), v.end());
  const double v_lo = v[lo];
  if (lo + 1 >= v.size()) return v_lo;
  const double v_hi = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(lo) + 1, v.end());
  return v_lo + (pos - static_cast<double>(lo)) * (v_hi - v_lo);
}

std::optional<SlopeFit> fit_slope(const std::vector<FitPoint>& pts) {
  double sw = 0, sx = 0, sy = 0;
  for (const FitPoint& p : pts) {
    sw += p.w;
    sx += p.w * p.x;
    sy += p.w * p.y;
  }
  if (sw <= 0) return std::nullopt;
  const double mx = sx / sw, my = sy / sw;
  double sxx = 0, sxy = 0;
  for (const FitPoint& p : pts) {
    sxx += p.w * (p.x - mx) * (p.x - mx);
    sxy += p.w * (p.x - mx) * (p.y - my);
  }
  if (sxx <= 1e-12) return std::nullopt;
  return SlopeFit{sxy / sxx, std::sqrt(1.0 / sxx)};
}

}  // namespace pl::tune
