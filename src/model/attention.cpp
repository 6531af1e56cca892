#include "model/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "kernels/attention.h"
#include "kernels/kernels.h"
#include "kernels/thread_pool.h"

namespace pl {
namespace {

// Query rows (tokens x query heads of a group) one task handles: each K/V
// block is converted once per task for all of them, and the task's scratch
// (scaled queries and output accumulators, 2 x 64 x head_dim floats) stays in L1/L2.
constexpr int kRowsPerTask = 64;

}  // namespace

void store_kv(const ModelConfig& c, int layer, const Batch& batch, const float* k, const float* v, KvStore& kv) {
  store_kv(c, layer, batch, k, v, kv, 0, batch.n_tokens());
}

void store_kv(const ModelConfig& c, int layer, const Batch& batch, const float* k, const float* v, KvStore& kv,
              int32_t t0, int32_t t1) {
  const int B = kv.config().block_size, D = c.head_dim;
  for (const BatchSeq& s : batch.seqs) {
    for (int32_t t = std::max(s.tok_begin, t0); t < std::min(s.tok_end, t1); ++t) {
      const int32_t p = batch.pos[t];
      PL_CHECK(p / B < static_cast<int32_t>(s.block_table.size()), "position {} has no KV block", p);
      const int block = s.block_table[p / B];
      const int off = p % B;
      for (int h = 0; h < c.n_head_kv; ++h) {
        const float* kr = k + static_cast<size_t>(t) * c.n_embd_kv() + h * D;
        uint16_t* kt = kv.k(layer, block, h) + off;  // keys are stored transposed: [D][B]
        for (int d = 0; d < D; ++d) kt[static_cast<size_t>(d) * B] = kernels::fp32_to_fp16(kr[d]);
        kernels::fp32_to_fp16_row(v + static_cast<size_t>(t) * c.n_embd_kv() + h * D, kv.v(layer, block, h) + off * D, D);
      }
    }
  }
}

void attention(const ModelConfig& c, int layer, const Batch& batch, const KvStore& kv, const float* q, float* out,
               AttentionScratch& scratch, ThreadPool& pool) {
  const int D = c.head_dim, G = c.n_group();
  const int tile = std::max(1, kRowsPerTask / G);  // query tokens per task
  const int64_t ldq = c.n_embd_q();

  // Tasks: (sequence, query tile, KV head), costliest first and handed out
  // dynamically, so a long sequence in a decode batch (or the last, longest
  // tiles of a causal prefill) does not leave the other threads waiting.
  std::vector<AttentionScratch::Task>& tasks = scratch.tasks;
  tasks.clear();
  for (int si = 0; si < static_cast<int>(batch.seqs.size()); ++si) {
    const BatchSeq& s = batch.seqs[si];
    for (int32_t t0 = s.tok_begin; t0 < s.tok_end; t0 += tile) {
      const int32_t t1 = std::min(s.tok_end, t0 + tile);
      const int64_t cost = int64_t{t1 - t0} * (batch.pos[t1 - 1] + 1);
      for (int h = 0; h < c.n_head_kv; ++h) tasks.push_back({si, t0, t1, h, cost});
    }
  }
  std::stable_sort(tasks.begin(), tasks.end(), [](const auto& a, const auto& b) { return a.cost > b.cost; });
  if (scratch.per_thread.size() < static_cast<size_t>(pool.size())) scratch.per_thread.resize(pool.size());
  const size_t need = kernels::attn_tile_scratch_floats(D, tile, G);
  for (std::vector<float>& buf : scratch.per_thread)
    if (buf.size() < need) buf.resize(need);

  std::atomic<size_t> next{0};
  pool.run([&](int ith, int) {
    float* buf = scratch.per_thread[ith].data();
    for (size_t ti; (ti = next.fetch_add(1, std::memory_order_relaxed)) < tasks.size();) {
      const AttentionScratch::Task& task = tasks[ti];
      const BatchSeq& s = batch.seqs[task.seq];
      kernels::AttnTileArgs a;
      a.head_dim = D;
      a.block_size = kv.config().block_size;
      a.n_tok = task.t1 - task.t0;
      a.n_group = G;
      a.pos = batch.pos.data() + task.t0;
      a.q = q + task.t0 * ldq + static_cast<int64_t>(task.head_kv) * G * D;
      a.ldq = ldq;
      a.out = out + task.t0 * ldq + static_cast<int64_t>(task.head_kv) * G * D;
      a.ldo = ldq;
      a.k = kv.k(layer, 0, task.head_kv);
      a.v = kv.v(layer, 0, task.head_kv);
      a.block_table = s.block_table.data();
      a.block_stride = kv.block_stride();
      a.scale = 1.0f / std::sqrt(static_cast<float>(D));
      kernels::attn_tile(a, buf);
    }
  });
}

}  // namespace pl
