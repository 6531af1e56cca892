// Causal self-attention of a batch over the paged KV cache.
#pragma once

#include <vector>

#include "model/batch.h"
#include "model/config.h"
#include "model/kv_store.h"

namespace pl {

class ThreadPool;

// Work list and per-thread buffers of attention(), owned by ForwardState so a
// forward pass allocates nothing once they have grown to the largest batch.
struct AttentionScratch {
  struct Task {
    int seq;         // index into Batch::seqs
    int32_t t0, t1;  // query tokens [t0, t1) of that sequence
    int head_kv;
    int64_t cost;    // query rows x keys, for ordering
  };
  std::vector<Task> tasks;
  std::vector<std::vector<float>> per_thread;
};

// Writes each token's K and V rows ([n_tokens, n_embd_kv], fp32) into its slot of the cache as fp16.
void store_kv(const ModelConfig& c, int layer, const Batch& batch, const float* k, const float* v, KvStore& kv);
// The same for batch tokens [t0, t1) only (each token has its own slot, so ranges may run in parallel).
void store_kv(const ModelConfig& c, int layer, const Batch& batch, const float* k, const float* v, KvStore& kv,
              int32_t t0, int32_t t1);

// out[t] = softmax(q[t] . K^T / sqrt(head_dim)) V over positions 0..pos[t] of t's sequence, per head,
// query head h reading KV head h / n_group. q, out: [n_tokens, n_embd_q].
void attention(const ModelConfig& c, int layer, const Batch& batch, const KvStore& kv, const float* q, float* out,
               AttentionScratch& scratch, ThreadPool& pool);

}  // namespace pl
