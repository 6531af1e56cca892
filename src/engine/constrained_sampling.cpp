#include "engine/constrained_sampling.h"

#include <algorithm>
#include <cmath>

#include "engine/sampler.h"
#include "grammar/grammar.h"

namespace pl {

int32_t sample_constrained(Sampler& sampler, const grammar::Constraint& constraint, const float* logits,
                           std::span<const int32_t> history, std::span<float> scratch) {
  const int32_t first = sampler.sample(logits, history);
  if (constraint.allows(first)) return first;

  std::copy(logits, logits + scratch.size(), scratch.begin());
  constraint.mask(scratch);
  const int32_t second = sampler.sample(scratch.data(), history);
  if (constraint.allows(second)) return second;
  // Only reachable when every allowed token was cut (all masked logits -inf,
  // or a draw that fell on a zero-probability tail): the best allowed token.
  const int32_t best = argmax(scratch.data(), static_cast<int>(scratch.size()));
  if (std::isinf(scratch[best]) && scratch[best] < 0) return -1;
  return constraint.allows(best) ? best : -1;
}

}  // namespace pl
