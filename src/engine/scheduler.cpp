#include "engine/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace pl {

Scheduler::Scheduler(BlockAllocator& blocks, int n_batch, int n_parallel, bool prefix_cache)
    : blocks_(blocks), n_batch_(n_batch), n_parallel_(n_parallel), prefix_cache_(prefix_cache) {
  PL_CHECK(n_batch > 0 && n_parallel > 0, "bad scheduler limits");
}

void Scheduler::add(Sequence* seq) {
  PL_CHECK(seq->state == SeqState::Waiting && seq->blocks.empty(), "add of a sequence that is not new");
  waiting_.push_back(seq);
}

void Scheduler::set_parallel(int n) {
  PL_CHECK(n > 0, "parallel must be positive");
  n_parallel_ = n;
}

void Scheduler::free_blocks(Sequence* seq) {
  for (int32_t b : seq->blocks) blocks_.release(b);
  seq->blocks.clear();
  seq->n_computed = 0;
  seq->n_registered = 0;
  seq->last_hash = 0;
}

void Scheduler::remove(Sequence* seq) {
  if (auto it = std::find(running_.begin(), running_.end(), seq); it != running_.end()) running_.erase(it);
  if (auto it = std::find(waiting_.begin(), waiting_.end(), seq); it != waiting_.end()) waiting_.erase(it);
  free_blocks(seq);
  seq->state = SeqState::Finished;
}

bool Scheduler::grow(Sequence* seq, int n_positions) {
  const int B = blocks_.block_size();
  const int need = (n_positions + B - 1) / B;
  while (static_cast<int>(seq->blocks.size()) < need) {
    std::optional<int32_t> b = blocks_.allocate();
    if (!b) return false;
    seq->blocks.push_back(*b);
  }
  return true;
}

int Scheduler::preempt(Sequence* seq, StepPlan& plan) {
  running_.erase(std::find(running_.begin(), running_.end(), seq));
  // Anything planned for it this step is dropped.
  int n_dropped = 0;
  for (const StepPlan::Item& i : plan.items)
    if (i.seq == seq) n_dropped += i.n_tokens;
  std::erase_if(plan.items, [&](const StepPlan::Item& i) { return i.seq == seq; });
  free_blocks(seq);
  seq->state = SeqState::Waiting;
  ++seq->n_preemptions;
  ++n_preemptions_;
  waiting_.push_front(seq);  // first in line when blocks free up again
  plan.preempted.push_back(seq);
  return n_dropped;
}

StepPlan Scheduler::schedule() {
  StepPlan plan;
  int budget = n_batch_;

  // 1 + 2: running sequences, decoders first, then prefill chunks, oldest first.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
      Sequence* seq = running_[i];
      const bool decoding = seq->n_pending() == 1;
      if (decoding != (pass == 0) || seq->n_pending() <= 0) continue;
      int n = std::min(seq->n_pending(), budget);
      // Make room: preempt the newest other sequence until this one's blocks fit.
      while (!grow(seq, seq->n_computed + n)) {
        Sequence* victim = running_.back();
        if (victim == seq) {
          // It is the newest itself: shrink the chunk to what it already holds, or give way.
          const int held = static_cast<int>(seq->blocks.size()) * blocks_.block_size() - seq->n_computed;
          if (held > 0) {
            n = held;
            continue;
          }
          if (running_.size() == 1) {  // alone and still no block: the pool is too small for it
            running_.erase(running_.begin() + i);
            free_blocks(seq);
            plan.failed.push_back(seq);
          } else {
            budget += preempt(seq, plan);
          }
          --i;
          n = 0;
          break;
        }
        budget += preempt(victim, plan);
      }
      if (n == 0) continue;
      const bool last = seq->n_computed + n == static_cast<int>(seq->tokens.size());
      plan.items.push_back({seq, n, last && !seq->embedding});
      budget -= n;
    }
  }

  // 3: admission.
  const int B = blocks_.block_size();
  while (!waiting_.empty() && static_cast<int>(running_.size()) < n_parallel_ && budget > 0) {
    Sequence* seq = waiting_.front();
    PL_CHECK(seq->blocks.empty() && seq->n_computed == 0, "waiting sequence {} holds blocks", seq->id);
    if ((static_cast<int>(seq->tokens.size()) + B - 1) / B > blocks_.n_blocks()) {
      waiting_.pop_front();  // more tokens than the whole pool: it could never run
      plan.failed.push_back(seq);
      continue;
    }
    // Reuse cached full blocks of the prompt, but always leave the last token
    // to compute: its logits start the generation (and a shared block is never written).
    if (prefix_cache_ && !seq->embedding) {
      BlockAllocator::PrefixHit hit = blocks_.acquire_prefix(seq->tokens, static_cast<int>(seq->tokens.size()) - 1);
      seq->blocks = std::move(hit.blocks);
      seq->n_computed = static_cast<int>(seq->blocks.size()) * B;
      seq->n_registered = static_cast<int>(seq->blocks.size());
      seq->last_hash = hit.last_hash;
    }
    seq->n_prefix_hit = seq->n_computed;
    const int n = std::min(seq->n_pending(), budget);
    // Admit only if the blocks for its first chunk fit without preempting anyone.
    const int need = (seq->n_computed + n + B - 1) / B - static_cast<int>(seq->blocks.size());
    if (need > blocks_.n_available()) {
      free_blocks(seq);  // gives back the prefix blocks it just took
      seq->n_prefix_hit = 0;
      break;
    }
    PL_CHECK(grow(seq, seq->n_computed + n), "blocks counted as available could not be allocated");
    waiting_.pop_front();
    seq->state = SeqState::Running;
    running_.push_back(seq);
    const bool last = seq->n_computed + n == static_cast<int>(seq->tokens.size());
    plan.items.push_back({seq, n, last && !seq->embedding});
    budget -= n;
  }
  return plan;
}

void Scheduler::commit(const StepPlan& plan) {
  const int B = blocks_.block_size();
  for (const StepPlan::Item& item : plan.items) {
    Sequence* seq = item.seq;
    seq->n_computed += item.n_tokens;
    PL_CHECK(seq->n_computed <= static_cast<int>(seq->tokens.size()), "computed past the known tokens");
    if (!prefix_cache_) continue;
    while ((seq->n_registered + 1) * B <= seq->n_computed) {
      std::span<const int32_t> t =
          std::span<const int32_t>(seq->tokens).subspan(static_cast<size_t>(seq->n_registered) * B, B);
      seq->last_hash = BlockAllocator::chain_hash(seq->last_hash, t);
      blocks_.register_full(seq->blocks[seq->n_registered], seq->last_hash, t);
      ++seq->n_registered;
    }
  }
}

}  // namespace pl
