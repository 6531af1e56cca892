// One request's sequence as the scheduler and engine see it.
//
// Tracked as tokens known (prompt + generated so far) vs tokens computed (K/V
// in the cache), so prefill and decode are one case: a running sequence has
// tokens.size() - n_computed tokens to compute, many during prefill, one
// while decoding. Chunked prefill is just a smaller slice.
//
// States and the allowed transitions:
//   Waiting  -> Running   admitted by the scheduler (FCFS, under the parallel limit)
//   Running  -> Waiting   preempted when the KV pool runs out: blocks freed, all
//                         known tokens recomputed when it runs again
//   Running  -> Finished  stop token/string, length, cancelled, or error
//   Waiting  -> Finished  cancelled or rejected before it ran
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace pl {

enum class SeqState { Waiting, Running, Finished };

struct Sequence {
  uint64_t id = 0;
  SeqState state = SeqState::Waiting;
  std::vector<int32_t> tokens;         // known tokens: prompt, then generated
  int n_prompt = 0;                    // tokens of the prompt (a prefix of tokens)
  int n_computed = 0;                  // leading tokens whose K/V are in this sequence's blocks
  std::vector<int32_t> blocks;         // block table: physical block of each logical block
  uint64_t last_hash = 0;              // prefix-cache hash of the last registered full block
  int n_registered = 0;                // leading full blocks registered in the prefix cache
  int n_ctx_max = 0;                   // most tokens this sequence may hold
  bool embedding = false;              // compute hidden states of the prompt, generate nothing
  int n_prefix_hit = 0;                // prompt tokens served from the prefix cache at the last admission
  int n_preemptions = 0;
  std::chrono::steady_clock::time_point t_arrival, t_admitted, t_prompt_done, t_last_token;

  int n_pending() const { return static_cast<int>(tokens.size()) - n_computed; }
};

}  // namespace pl
