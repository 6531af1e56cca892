// Token sampling as Ollama offers it. Each sequence owns a Sampler with its
// own RNG, so a seeded request samples the same tokens whatever else runs in
// the batch beside it.
//
// Order (Ollama's): penalties over the last repeat_last_n tokens; then greedy
// when temperature <= 0; else top_k, temperature, softmax, top_p, min_p, draw.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <vector>

namespace pl {

struct SamplingParams {
  float temperature = 0.8f;
  int top_k = 40;              // <= 0: no limit
  float top_p = 0.9f;          // >= 1: no limit
  float min_p = 0.0f;          // <= 0: no limit
  int repeat_last_n = 64;      // 0: no penalties; -1: the whole history
  float repeat_penalty = 1.0f; // 1: off
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::optional<uint64_t> seed;  // none: a random seed

  // Throws pl::Error naming the bad field (e.g. negative temperature, top_p outside [0, 1]).
  void validate() const;
};

class Sampler {
 public:
  Sampler(const SamplingParams& p, int n_vocab);

  // Picks the next token from logits [n_vocab]; `history` is every token of
  // the sequence so far (prompt and generated), for the penalties.
  int32_t sample(const float* logits, std::span<const int32_t> history);

  const SamplingParams& params() const { return p_; }

 private:
  struct Candidate {
    int32_t id;
    float logit;  // then probability after softmax
  };
  SamplingParams p_;
  int n_vocab_;
  std::mt19937_64 rng_;
  std::vector<Candidate> cand_;    // [n_vocab] scratch
  std::vector<int32_t> counts_;    // [n_vocab] scratch for penalties
  std::vector<int32_t> touched_;   // ids whose count is non-zero
};

// Index of the largest logit (the lowest index among equals).
int32_t argmax(const float* logits, int n);

}  // namespace pl
