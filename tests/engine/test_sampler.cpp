#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/error.h"
#include "engine/sampler.h"

using namespace pl;

namespace {

std::vector<float> logits_of(std::initializer_list<float> l) { return l; }

SamplingParams plain(float temperature) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 42;
  return p;
}

}  // namespace

TEST(Sampler, GreedyPicksArgmaxLowestIndexOnTies) {
  Sampler s(plain(0.0f), 5);
  auto l = logits_of({1, 3, 3, -2, 0});
  EXPECT_EQ(s.sample(l.data(), {}), 1);
  EXPECT_EQ(argmax(l.data(), 5), 1);
}

TEST(Sampler, TopKOneIsGreedy) {
  SamplingParams p = plain(1.5f);
  p.top_k = 1;
  Sampler s(p, 4);
  auto l = logits_of({0.1f, 0.5f, 0.4f, 0.45f});
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(l.data(), {}), 1);
}

TEST(Sampler, SeededIsReproducible) {
  std::vector<float> l(100);
  for (int i = 0; i < 100; ++i) l[i] = std::sin(i * 0.7f);
  Sampler a(plain(1.0f), 100), b(plain(1.0f), 100);
  for (int i = 0; i < 200; ++i) ASSERT_EQ(a.sample(l.data(), {}), b.sample(l.data(), {}));
}

TEST(Sampler, FrequenciesFollowSoftmax) {
  // p = softmax(l / T) with T = 2: check observed frequencies within 4 standard errors.
  auto l = logits_of({0.0f, 1.0f, 2.0f, 3.0f});
  const float T = 2.0f;
  Sampler s(plain(T), 4);
  const int n = 40000;
  std::map<int, int> count;
  for (int i = 0; i < n; ++i) count[s.sample(l.data(), {})]++;
  double z = 0;
  for (float x : l) z += std::exp(x / T);
  for (int i = 0; i < 4; ++i) {
    double p = std::exp(l.begin()[i] / T) / z;
    double se = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(count[i] / double(n), p, 4 * se) << i;
  }
}

TEST(Sampler, TopPKeepsTheNucleus) {
  // Probabilities ~ 0.64, 0.24, 0.09, 0.03: top_p 0.7 keeps the first two only.
  auto l = logits_of({3.0f, 2.0f, 1.0f, 0.0f});
  SamplingParams p = plain(1.0f);
  p.top_p = 0.7f;
  Sampler s(p, 4);
  std::map<int, int> count;
  for (int i = 0; i < 5000; ++i) count[s.sample(l.data(), {})]++;
  EXPECT_GT(count[0], 0);
  EXPECT_GT(count[1], 0);
  EXPECT_EQ(count[2] + count[3], 0);
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  auto l = logits_of({3.0f, 2.9f, 0.0f, -1.0f});
  SamplingParams p = plain(1.0f);
  p.min_p = 0.5f;  // keeps tokens with p >= 0.5 * p_max: ids 0 and 1
  Sampler s(p, 4);
  std::map<int, int> count;
  for (int i = 0; i < 3000; ++i) count[s.sample(l.data(), {})]++;
  EXPECT_GT(count[1], 0);
  EXPECT_EQ(count[2] + count[3], 0);
}

TEST(Sampler, RepeatPenaltyChangesTheChoice) {
  auto l = logits_of({2.0f, 1.9f, 0.5f});
  SamplingParams p = plain(0.0f);
  p.repeat_penalty = 1.5f;  // 2.0 / 1.5 = 1.33 < 1.9
  Sampler s(p, 3);
  std::vector<int32_t> history = {0};
  EXPECT_EQ(s.sample(l.data(), history), 1);
  // Outside the look-back window, no penalty.
  p.repeat_last_n = 1;
  Sampler s2(p, 3);
  std::vector<int32_t> old = {0, 2};
  EXPECT_EQ(s2.sample(l.data(), old), 0);
}

TEST(Sampler, PresenceAndFrequencyPenalties) {
  auto l = logits_of({2.0f, 1.0f});
  SamplingParams p = plain(0.0f);
  p.frequency_penalty = 0.4f;  // token 0 seen 3 times: 2.0 - 1.2 = 0.8 < 1.0
  Sampler s(p, 2);
  std::vector<int32_t> h = {0, 0, 0};
  EXPECT_EQ(s.sample(l.data(), h), 1);
  SamplingParams q = plain(0.0f);
  q.presence_penalty = 0.5f;  // 2.0 - 0.5 = 1.5 > 1.0
  Sampler s2(q, 2);
  EXPECT_EQ(s2.sample(l.data(), h), 0);
}

TEST(Sampler, ValidatesParameters) {
  SamplingParams p;
  p.temperature = -1;
  EXPECT_THROW(p.validate(), Error);
  p = {};
  p.top_p = 1.5f;
  EXPECT_THROW(p.validate(), Error);
  p = {};
  p.repeat_penalty = 0;
  EXPECT_THROW(p.validate(), Error);
  p = {};
  p.min_p = -0.1f;
  EXPECT_THROW(p.validate(), Error);
  EXPECT_NO_THROW(SamplingParams{}.validate());
}

TEST(Sampler, OllamaDefaults) {
  SamplingParams p;
  EXPECT_FLOAT_EQ(p.temperature, 0.8f);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_FLOAT_EQ(p.top_p, 0.9f);
  EXPECT_EQ(p.repeat_last_n, 64);
  EXPECT_FLOAT_EQ(p.repeat_penalty, 1.0f);
}
