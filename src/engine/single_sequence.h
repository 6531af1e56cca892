// One sequence run straight through the model: the simplest client of the
// forward pass, used by `parallama generate`, `parallama logits` and tests as
// the one-at-a-time baseline that batched runs must match.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "kernels/thread_pool.h"
#include "model/model.h"

namespace pl {

class SingleSequence {
 public:
  // n_ctx: the most positions this sequence may hold; max_batch: tokens per forward pass.
  SingleSequence(const Model& model, int n_ctx, int max_batch, ThreadPool& pool);

  int n_past() const { return n_past_; }
  int n_ctx() const { return n_ctx_; }
  ForwardState& state() { return state_; }

  // Feeds tokens (in chunks of max_batch) and returns the logits of the last
  // one ([n_vocab]), or of every one ([n_tokens, n_vocab]) when all_logits.
  // Throws pl::Error when the context would overflow.
  std::span<const float> eval(std::span<const int32_t> tokens, bool all_logits = false);

 private:
  const Model& model_;
  int n_ctx_;
  int max_batch_;
  ThreadPool& pool_;
  KvStore kv_;
  ForwardState state_;
  std::vector<int32_t> block_table_;  // identity: this sequence owns every block
  std::vector<float> logits_;         // [n_tokens or 1, n_vocab]
  Batch batch_;
  int n_past_ = 0;
};

}  // namespace pl
