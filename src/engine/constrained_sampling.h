// Sampling under a structured-output constraint (src/grammar).
//
// Fast path: sample from the logits as they are and keep the token when the
// constraint allows it. Otherwise mask the disallowed tokens (in a copy) and
// sample again. For the untruncated distribution p this is exact rejection
// sampling: P(t) = p(t) + (1 - p(A)) p(t) / p(A) = p(t) / p(A) for t in the
// allowed set A, i.e. p conditioned on A, while most steps never pay for the
// walk over the vocabulary. Greedy stays the argmax over the allowed tokens
// (the unmasked argmax is taken when allowed, else the masked one).
#pragma once

#include <cstdint>
#include <span>

namespace pl {

class Sampler;
namespace grammar {
class Constraint;
}

// The next token, or -1 when the constraint allows no token at all (a grammar
// that cannot continue: the caller ends the sequence with an error).
// scratch: [n_vocab], the masked copy of the logits (owned by the caller so
// that no step allocates).
int32_t sample_constrained(Sampler& sampler, const grammar::Constraint& constraint, const float* logits,
                           std::span<const int32_t> history, std::span<float> scratch);

}  // namespace pl
