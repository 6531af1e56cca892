#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace pl {

void SamplingParams::validate() const {
  if (!(temperature >= 0) || !std::isfinite(temperature)) fail("temperature must be >= 0, got {}", temperature);
  if (!(top_p >= 0 && top_p <= 1)) fail("top_p must be between 0 and 1, got {}", top_p);
  if (!(min_p >= 0 && min_p <= 1)) fail("min_p must be between 0 and 1, got {}", min_p);
  if (repeat_last_n < -1) fail("repeat_last_n must be >= -1, got {}", repeat_last_n);
  if (!(repeat_penalty > 0) || !std::isfinite(repeat_penalty)) fail("repeat_penalty must be > 0, got {}", repeat_penalty);
  if (!std::isfinite(presence_penalty)) fail("presence_penalty must be finite");
  if (!std::isfinite(frequency_penalty)) fail("frequency_penalty must be finite");
}

int32_t argmax(const float* logits, int n) {
  int32_t best = 0;
  for (int i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

Sampler::Sampler(const SamplingParams& p, int n_vocab) : p_(p), n_vocab_(n_vocab) {
  p_.validate();
  rng_.seed(p_.seed ? *p_.seed : std::random_device{}());
  cand_.resize(n_vocab);
  counts_.assign(n_vocab, 0);
}

int32_t Sampler::sample(const float* logits, std::span<const int32_t> history) {
  for (int i = 0; i < n_vocab_; ++i) cand_[i] = {i, logits[i]};

  // Penalties: a repeated token's logit is pushed away from being picked again.
  const bool penalize = p_.repeat_last_n != 0 &&
                        (p_.repeat_penalty != 1.0f || p_.presence_penalty != 0.0f || p_.frequency_penalty != 0.0f);
  if (penalize) {
    size_t n = p_.repeat_last_n < 0 ? history.size() : std::min<size_t>(history.size(), p_.repeat_last_n);
    for (int32_t id : history.subspan(history.size() - n)) {
      if (id < 0 || id >= n_vocab_) continue;
      if (counts_[id]++ == 0) touched_.push_back(id);
    }
    for (int32_t id : touched_) {
      float& l = cand_[id].logit;
      l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
      l -= static_cast<float>(counts_[id]) * p_.frequency_penalty + p_.presence_penalty;
      counts_[id] = 0;
    }
    touched_.clear();
  }

  if (p_.temperature <= 0.0f) {
    int32_t best = 0;
    for (int i = 1; i < n_vocab_; ++i)
      if (cand_[i].logit > cand_[best].logit) best = i;
    return best;
  }

  // top_k: keep the k largest, sorted descending (ties broken by id, for determinism).
  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  size_t n = cand_.size();
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < n) {
    std::nth_element(cand_.begin(), cand_.begin() + p_.top_k, cand_.end(), by_logit);
    n = p_.top_k;
  }
  std::sort(cand_.begin(), cand_.begin() + n, by_logit);

  // Temperature, then softmax (stable: subtract the max).
  const float max_l = cand_[0].logit;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    cand_[i].logit = std::exp((cand_[i].logit - max_l) / p_.temperature);
    sum += cand_[i].logit;
  }
  for (size_t i = 0; i < n; ++i) cand_[i].logit = static_cast<float>(cand_[i].logit / sum);

  // top_p: the smallest prefix whose probability mass reaches p.
  if (p_.top_p < 1.0f) {
    double cum = 0;
    size_t keep = n;
    for (size_t i = 0; i < n; ++i) {
      cum += cand_[i].logit;
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
    n = std::max<size_t>(keep, 1);
  }
  // min_p: drop tokens less likely than min_p times the most likely one.
  if (p_.min_p > 0.0f) {
    const float floor = cand_[0].logit * p_.min_p;
    size_t keep = 1;
    while (keep < n && cand_[keep].logit >= floor) ++keep;
    n = keep;
  }

  double mass = 0;
  for (size_t i = 0; i < n; ++i) mass += cand_[i].logit;
  const double r = std::uniform_real_distribution<double>(0.0, mass)(rng_);
  double cum = 0;
  for (size_t i = 0; i < n; ++i) {
    cum += cand_[i].logit;
    if (r < cum) return cand_[i].id;
  }
  return cand_[n - 1].id;
}

}  // namespace pl
