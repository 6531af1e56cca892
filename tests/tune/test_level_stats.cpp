#include <gtest/gtest.h>

#include <cmath>

#include "tune/level_stats.h"

using namespace pl::tune;

TEST(LevelStats, QuantileInterpolatesBetweenOrderStatistics) {
  EXPECT_DOUBLE_EQ(quantile({5}, 0.9), 5);
  EXPECT_DOUBLE_EQ(median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(median({4, 1, 3, 2}), 2.5);
  // 0.9 of 11 values 0..10 is exactly the 10th order statistic (index 9).
  EXPECT_DOUBLE_EQ(quantile({10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, 0.9), 9);
  // One outlier among 8 moves the p90 by 0.3 of its excess, not all of it.
  EXPECT_NEAR(quantile({1, 1, 1, 1, 1, 1, 1, 11}, 0.9), 1 + 0.3 * 10, 1e-12);
  EXPECT_NEAR(quantile({11, 1, 1, 1, 1, 1, 1, 1}, 0.9), 1 + 0.3 * 10, 1e-12);  // order does not matter
}

TEST(LevelStats, FitSlopeRecoversALineAndItsError) {
  std::vector<FitPoint> pts;
  for (int x = 1; x <= 5; ++x) pts.push_back({double(x), 50 + 12.0 * x, 4.0});
  const auto f = fit_slope(pts);
  ASSERT_TRUE(f.has_value());
  EXPECT_NEAR(f->slope, 12, 1e-9);
  // se = sqrt(1 / sum w (x - mean)^2) = sqrt(1 / (4 * 10)).
  EXPECT_NEAR(f->se, std::sqrt(1.0 / 40), 1e-12);
  EXPECT_FALSE(fit_slope({{3, 1, 1}, {3, 2, 1}}).has_value());  // one distinct x
  EXPECT_FALSE(fit_slope({}).has_value());
}

TEST(LevelStats, KeepsTheNewestWindowAndFiltersByAge) {
  LevelStats st(4, 3);
  for (int i = 0; i < 5; ++i) st.add(2, Sample{i, 100.0 + i, 1, {}});
  LevelView v = st.view(2, 0);
  EXPECT_EQ(v.n, 3);  // samples 2, 3, 4
  EXPECT_DOUBLE_EQ(v.step_ms, 103);
  EXPECT_EQ(v.newest_obs, 4);
  EXPECT_EQ(st.view(2, 4).n, 1);
  EXPECT_EQ(st.view(3, 0).n, 0);
  EXPECT_EQ(st.view(9, 0).n, 0);  // out of range reads as unmeasured
  st.clear(2);
  EXPECT_EQ(st.view(2, 0).n, 0);
}

TEST(LevelStats, DriftRatioComparesNewestWithOlderSamples) {
  LevelStats st(2, 8);
  for (int i = 0; i < 5; ++i) st.add(1, Sample{i, 100, 1, {}});
  EXPECT_FALSE(st.drift_ratio(1, 3, 0).has_value());  // 3 new need 3 older
  st.add(1, Sample{5, 100, 1, {}});
  EXPECT_NEAR(*st.drift_ratio(1, 3, 0), 1.0, 1e-12);
  for (int i = 6; i < 9; ++i) st.add(1, Sample{i, 200, 1, {}});
  EXPECT_NEAR(*st.drift_ratio(1, 3, 0), 2.0, 1e-12);
}

TEST(LevelStats, P90ScalesIntervalSpreadBackToSteps) {
  LevelStats st(1, 16);
  // Interval means of 4 steps each: 100 +- 5 ms; per step that is +- 10 ms.
  for (int i = 0; i < 10; ++i) st.add(1, Sample{i, i % 2 ? 105.0 : 95.0, 4, {}});
  EXPECT_NEAR(st.view(1, 0).itl_p90_ms, 110, 1e-9);
  EXPECT_FALSE(st.view(1, 0).measured);
}

TEST(LevelStats, MeasuredGapsArePooledOverTheWindow) {
  // Per-token gaps 1..10 ms in every interval: the pooled p90 is theirs, whatever the step times say.
  LevelStats m(1, 16);
  std::vector<float> gaps;
  for (int g = 1; g <= 10; ++g) gaps.push_back(static_cast<float>(g));
  for (int i = 0; i < 10; ++i) m.add(1, Sample{i, 100, 4, gaps});
  LevelView v = m.view(1, 0);
  EXPECT_TRUE(v.measured);
  EXPECT_NEAR(v.itl_p90_ms, quantile(std::vector<double>(gaps.begin(), gaps.end()), 0.9), 1e-6);
  // One interval of 300 ms gaps is a tenth of the pool: the p90 stays near the others'.
  m.add(1, Sample{10, 100, 4, std::vector<float>(10, 300)});
  EXPECT_LT(m.view(1, 0).itl_p90_ms, 11);
  // Too few gaps to judge a p90 by: the step times speak.
  LevelStats few(1, 16);
  for (int i = 0; i < 4; ++i) few.add(1, Sample{i, 100, 1, {500}});
  EXPECT_FALSE(few.view(1, 0).measured);
  EXPECT_NEAR(few.view(1, 0).itl_p90_ms, 100, 1e-9);
}
