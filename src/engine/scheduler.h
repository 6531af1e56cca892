// Scheduling policy: each step, decide which tokens of which sequences go into
// the next forward pass. Returns plain data (StepPlan); the engine executes it
// and reports back with commit(). Owns queue membership and, through the
// BlockAllocator, every KV block a sequence holds.
//
// Per step:
//  1. every running sequence that is decoding gets its next token (they go
//     first, so a long prompt never stalls them);
//  2. the rest of the token budget (n_batch) goes to prefill chunks of running
//     sequences, oldest first;
//  3. waiting sequences are admitted FCFS while fewer than n_parallel run and
//     budget remains, after a prefix-cache lookup of their prompt.
// When a sequence needs a KV block and none is left, the newest running
// sequence is preempted (blocks freed, recomputed later) rather than failing
// anyone. A sequence that cannot get a block even alone fails.
#pragma once

#include <deque>
#include <vector>

#include "engine/block_allocator.h"
#include "engine/sequence.h"

namespace pl {

struct StepPlan {
  struct Item {
    Sequence* seq;
    int n_tokens;  // compute tokens [seq->n_computed, seq->n_computed + n_tokens)
    bool want_logits;  // the chunk reaches the last known token (and the sequence generates)
  };
  std::vector<Item> items;
  std::vector<Sequence*> preempted;  // moved back to waiting this step
  std::vector<Sequence*> failed;     // cannot run: the KV pool is too small for them
  int n_tokens() const {
    int n = 0;
    for (const Item& i : items) n += i.n_tokens;
    return n;
  }
};

class Scheduler {
 public:
  Scheduler(BlockAllocator& blocks, int n_batch, int n_parallel, bool prefix_cache = true);

  void add(Sequence* seq);      // to the back of the waiting queue
  // Removes a sequence from whichever queue holds it and frees its blocks (finish or cancel).
  void remove(Sequence* seq);
  void set_parallel(int n);     // takes effect at the next schedule()
  int parallel() const { return n_parallel_; }

  StepPlan schedule();
  // After the forward pass: the planned tokens are computed; full blocks are
  // registered in the prefix cache.
  void commit(const StepPlan& plan);

  const std::vector<Sequence*>& running() const { return running_; }
  const std::deque<Sequence*>& waiting() const { return waiting_; }
  uint64_t n_preemptions() const { return n_preemptions_; }

 private:
  BlockAllocator& blocks_;
  int n_batch_;
  int n_parallel_;
  bool prefix_cache_;
  std::vector<Sequence*> running_;  // in admission order (oldest first)
  std::deque<Sequence*> waiting_;
  uint64_t n_preemptions_ = 0;

  // Gives seq blocks for positions < n_positions; false when the pool is out.
  bool grow(Sequence* seq, int n_positions);
  void free_blocks(Sequence* seq);
  // Returns the tokens this step had planned for it (given back to the budget).
  int preempt(Sequence* seq, StepPlan& plan);
};

}  // namespace pl
