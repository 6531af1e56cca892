#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/kernels.h"
#include "kernels/thread_pool.h"

namespace pl {
namespace {

// Query tokens of one sequence handled together by one task, so each K/V
// block is read once for all of them (and for all query heads of the group).
constexpr int kQueryTile = 16;

}  // namespace

void store_kv(const ModelConfig& c, int layer, const Batch& batch, const float* k, const float* v, KvStore& kv) {
  const int B = kv.config().block_size, D = c.head_dim;
  for (const BatchSeq& s : batch.seqs) {
    for (int32_t t = s.tok_begin; t < s.tok_end; ++t) {
      const int32_t p = batch.pos[t];
      PL_CHECK(p / B < static_cast<int32_t>(s.block_table.size()), "position {} has no KV block", p);
      const int block = s.block_table[p / B];
      const int off = p % B;
      for (int h = 0; h < c.n_head_kv; ++h) {
        kernels::fp32_to_fp16_row(k + static_cast<size_t>(t) * c.n_embd_kv() + h * D, kv.k(layer, block, h) + off * D, D);
        kernels::fp32_to_fp16_row(v + static_cast<size_t>(t) * c.n_embd_kv() + h * D, kv.v(layer, block, h) + off * D, D);
      }
    }
  }
}

void attention(const ModelConfig& c, int layer, const Batch& batch, const KvStore& kv, const float* q, float* out,
               AttentionScratch& scratch, ThreadPool& pool) {
  const int B = kv.config().block_size, D = c.head_dim, G = c.n_group();
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const int64_t ldq = c.n_embd_q();

  // Tasks: (sequence, query tile, KV head). Enumerated once per call; cheap next to the math.
  std::vector<AttentionScratch::Task>& tasks = scratch.tasks;
  tasks.clear();
  for (int si = 0; si < static_cast<int>(batch.seqs.size()); ++si) {
    const BatchSeq& s = batch.seqs[si];
    for (int32_t t0 = s.tok_begin; t0 < s.tok_end; t0 += kQueryTile)
      for (int h = 0; h < c.n_head_kv; ++h) tasks.push_back({si, t0, std::min(s.tok_end, t0 + kQueryTile), h});
  }
  const size_t rows_max = static_cast<size_t>(kQueryTile) * G;
  if (scratch.per_thread.size() < static_cast<size_t>(pool.size())) scratch.per_thread.resize(pool.size());

  pool.run([&](int ith, int nth) {
    // Per row (query token x query head of the group): running max m, running sum l, accumulator acc[D];
    // plus one row of block scores. This is the online-softmax ("flash") formulation: one pass over the
    // keys, no [n_query, n_key] score matrix.
    std::vector<float>& buf = scratch.per_thread[ith];
    const size_t need = rows_max * (2 + D) + B;
    if (buf.size() < need) buf.resize(need);
    float* m = buf.data();
    float* l = m + rows_max;
    float* acc = l + rows_max;
    float* sc = acc + rows_max * D;

    for (size_t ti = ith; ti < tasks.size(); ti += nth) {
      const AttentionScratch::Task& task = tasks[ti];
      const BatchSeq& s = batch.seqs[task.seq];
      const int n_q = task.t1 - task.t0;
      const int n_rows = n_q * G;
      std::fill(m, m + n_rows, -std::numeric_limits<float>::infinity());
      std::fill(l, l + n_rows, 0.0f);
      std::fill(acc, acc + static_cast<size_t>(n_rows) * D, 0.0f);
      const int32_t max_pos = batch.pos[task.t1 - 1];
      for (int kb = 0; kb * B <= max_pos; ++kb) {
        const int block = s.block_table[kb];
        const uint16_t* kblk = kv.k(layer, block, task.head_kv);  // [B, D]
        const uint16_t* vblk = kv.v(layer, block, task.head_kv);  // [B, D]
        for (int qi = 0; qi < n_q; ++qi) {
          const int32_t t = task.t0 + qi;
          const int n_keys = std::min(B, batch.pos[t] + 1 - kb * B);  // causal: keys at positions <= pos[t]
          if (n_keys <= 0) continue;
          for (int g = 0; g < G; ++g) {
            const int h = task.head_kv * G + g;
            const int r = qi * G + g;
            const float* qr = q + static_cast<size_t>(t) * ldq + static_cast<size_t>(h) * D;
            float block_max = -std::numeric_limits<float>::infinity();
            for (int j = 0; j < n_keys; ++j) {
              sc[j] = kernels::dot_f16_f32(kblk + static_cast<size_t>(j) * D, qr, D) * scale;
              block_max = std::max(block_max, sc[j]);
            }
            const float m_new = std::max(m[r], block_max);
            const float corr = std::exp(m[r] - m_new);  // rescales what was accumulated under the old max
            float* a = acc + static_cast<size_t>(r) * D;
            if (corr != 1.0f)
              for (int d = 0; d < D; ++d) a[d] *= corr;
            float sum = 0.0f;
            for (int j = 0; j < n_keys; ++j) {
              const float p = std::exp(sc[j] - m_new);
              sum += p;
              kernels::axpy_f16_f32(p, vblk + static_cast<size_t>(j) * D, a, D);
            }
            l[r] = l[r] * corr + sum;
            m[r] = m_new;
          }
        }
      }
      for (int qi = 0; qi < n_q; ++qi) {
        for (int g = 0; g < G; ++g) {
          const int r = qi * G + g;
          const int h = task.head_kv * G + g;
          float* o = out + static_cast<size_t>(task.t0 + qi) * ldq + static_cast<size_t>(h) * D;
          const float inv = 1.0f / l[r];
          for (int d = 0; d < D; ++d) o[d] = acc[static_cast<size_t>(r) * D + d] * inv;
        }
      }
    }
  });
}

}  // namespace pl
