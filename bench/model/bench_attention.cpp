// Attention alone (one layer's attention() on 2 threads), TinyLlama's shape
// (32 query heads, 4 KV heads, head_dim 64), next to the per-key algorithm it
// replaced (one dot_f16_f32 / axpy_f16_f32 call and a scalar exp per query
// row and key), kept here as a baseline so both run in the same process on the
// same (possibly shared) cores:
//
//   bench_attention [--benchmark_repetitions=5 --benchmark_report_aggregates_only=true]
//
// Counters: GFLOP per call and GFLOP/s of real time (4 * head_dim flops per query head and
// visible key: q.k and p.v).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/thread_pool.h"
#include "model/attention.h"

using namespace pl;

namespace {

constexpr int kBlock = 32;

struct Setup {
  ModelConfig c;
  std::vector<std::vector<int32_t>> tables;
  Batch batch;
  KvStore kv;                 // keys transposed per block (the engine's layout)
  std::vector<uint16_t> k_rows;  // baseline layout: per (block, head) [kBlock][D]
  std::vector<float> q, out;
  double flops = 0;

  // n_seq sequences, each with n_ctx positions already cached and its last n_q tokens as the queries.
  Setup(int n_seq, int n_ctx, int n_q)
      : c(shape()), kv({1, c.n_head_kv, c.head_dim, kBlock, n_seq * blocks_per_seq(n_ctx)}) {
    const int per = blocks_per_seq(n_ctx), KV = c.n_embd_kv(), D = c.head_dim;
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    tables.resize(n_seq);
    k_rows.resize(static_cast<size_t>(n_seq) * per * c.n_head_kv * kBlock * D);
    for (int s = 0; s < n_seq; ++s) {
      for (int b = 0; b < per; ++b) tables[s].push_back(s * per + b);
      std::vector<float> k(static_cast<size_t>(n_ctx) * KV), v(k.size());
      for (float& x : k) x = uni(rng);
      for (float& x : v) x = uni(rng);
      Batch hist;
      std::vector<int32_t> toks(n_ctx, 0);
      hist.add_seq(toks, 0, tables[s], false);
      store_kv(c, 0, hist, k.data(), v.data(), kv);
      for (int p = 0; p < n_ctx; ++p)
        for (int h = 0; h < c.n_head_kv; ++h)
          kernels::fp32_to_fp16_row(k.data() + static_cast<size_t>(p) * KV + h * D,
                                    baseline_k(tables[s][p / kBlock], h) + (p % kBlock) * D, D);
    }
    for (int s = 0; s < n_seq; ++s) {
      std::vector<int32_t> toks(n_q, 0);
      batch.add_seq(toks, n_ctx - n_q, tables[s], false);
      for (int p = n_ctx - n_q; p < n_ctx; ++p) flops += 4.0 * c.head_dim * c.n_head * (p + 1);
    }
    q.resize(static_cast<size_t>(batch.n_tokens()) * c.n_embd_q());
    for (float& x : q) x = uni(rng);
    out.resize(q.size());
  }
  static ModelConfig shape() {
    ModelConfig c;
    c.n_head = 32;
    c.n_head_kv = 4;
    c.head_dim = 64;
    return c;
  }
  static int blocks_per_seq(int n_ctx) { return (n_ctx + kBlock - 1) / kBlock; }
  uint16_t* baseline_k(int block, int h) {
    return k_rows.data() + (static_cast<size_t>(block) * c.n_head_kv + h) * kBlock * c.head_dim;
  }
};

// The previous implementation: tasks (sequence, 16-token tile, KV head), per
// query row and key one dot product, one exp and one axpy.
void attention_baseline(Setup& st, ThreadPool& pool, std::vector<std::vector<float>>& per_thread) {
  const ModelConfig& c = st.c;
  const Batch& batch = st.batch;
  const int B = kBlock, D = c.head_dim, G = c.n_group();
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const int64_t ldq = c.n_embd_q();
  struct Task {
    int seq;
    int32_t t0, t1;
    int head_kv;
  };
  std::vector<Task> tasks;
  for (int si = 0; si < static_cast<int>(batch.seqs.size()); ++si) {
    const BatchSeq& s = batch.seqs[si];
    for (int32_t t0 = s.tok_begin; t0 < s.tok_end; t0 += 16)
      for (int h = 0; h < c.n_head_kv; ++h) tasks.push_back({si, t0, std::min(s.tok_end, t0 + 16), h});
  }
  const size_t rows_max = static_cast<size_t>(16) * G;
  pool.run([&](int ith, int nth) {
    std::vector<float>& buf = per_thread[ith];
    buf.resize(rows_max * (2 + D) + B);
    float* m = buf.data();
    float* l = m + rows_max;
    float* acc = l + rows_max;
    float* sc = acc + rows_max * D;
    for (size_t ti = ith; ti < tasks.size(); ti += nth) {
      const Task& task = tasks[ti];
      const BatchSeq& s = batch.seqs[task.seq];
      const int n_q = task.t1 - task.t0, n_rows = n_q * G;
      std::fill(m, m + n_rows, -std::numeric_limits<float>::infinity());
      std::fill(l, l + n_rows, 0.0f);
      std::fill(acc, acc + static_cast<size_t>(n_rows) * D, 0.0f);
      const int32_t max_pos = batch.pos[task.t1 - 1];
      for (int kb = 0; kb * B <= max_pos; ++kb) {
        const uint16_t* kblk = st.baseline_k(s.block_table[kb], task.head_kv);
        const uint16_t* vblk = st.kv.v(0, s.block_table[kb], task.head_kv);
        for (int qi = 0; qi < n_q; ++qi) {
          const int32_t t = task.t0 + qi;
          const int n_keys = std::min(B, batch.pos[t] + 1 - kb * B);
          if (n_keys <= 0) continue;
          for (int g = 0; g < G; ++g) {
            const int h = task.head_kv * G + g, r = qi * G + g;
            const float* qr = st.q.data() + static_cast<size_t>(t) * ldq + static_cast<size_t>(h) * D;
            float block_max = -std::numeric_limits<float>::infinity();
            for (int j = 0; j < n_keys; ++j) {
              sc[j] = kernels::dot_f16_f32(kblk + static_cast<size_t>(j) * D, qr, D) * scale;
              block_max = std::max(block_max, sc[j]);
            }
            const float m_new = std::max(m[r], block_max);
            const float corr = std::exp(m[r] - m_new);
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
      for (int qi = 0; qi < n_q; ++qi)
        for (int g = 0; g < G; ++g) {
          const int r = qi * G + g, h = task.head_kv * G + g;
          float* o = st.out.data() + static_cast<size_t>(task.t0 + qi) * ldq + static_cast<size_t>(h) * D;
          for (int d = 0; d < D; ++d) o[d] = acc[static_cast<size_t>(r) * D + d] / l[r];
        }
    }
  });
}

// args: n_seq, n_ctx, n_q (query tokens per sequence, the last ones), baseline?, threads.
// On a shared machine compare the 1-thread rows' CPU time: real time there
// mostly measures when the OS gave us the cores.
void BM_Attention(benchmark::State& state) {
  Setup st(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)), static_cast<int>(state.range(2)));
  const bool baseline = state.range(3) != 0;
  ThreadPool pool(static_cast<int>(state.range(4)));
  AttentionScratch scratch;
  std::vector<std::vector<float>> per_thread(pool.size());
  for (auto _ : state) {
    if (baseline) attention_baseline(st, pool, per_thread);
    else attention(st.c, 0, st.batch, st.kv, st.q.data(), st.out.data(), scratch, pool);
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(st.flops, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP"] = st.flops / 1e9;
  state.counters["qtok/s"] = benchmark::Counter(st.batch.n_tokens(), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(kernels::cpu_level_name()) + (baseline ? " baseline" : " blocked"));
}

void args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"seqs", "ctx", "q", "old", "thr"});
  for (int thr : {1, 2})
    for (int old : {1, 0}) {
      b->Args({1, 512, 512, old, thr});   // one 512-token prefill
      b->Args({1, 512, 1, old, thr});     // decode, batch 1
      b->Args({1, 2048, 1, old, thr});    // decode, long context
      b->Args({16, 512, 1, old, thr});    // decode, batch 16
      b->Args({8, 128, 1, old, thr});     // decode, the runner benchmark's shape (8 streams, short contexts)
    }
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_Attention)->Apply(args);

}  // namespace

BENCHMARK_MAIN();
