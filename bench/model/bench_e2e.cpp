// End-to-end model benchmark (not a test): prefill and decode speed of one
// model, and aggregate decode speed of B sequences batched together.
//
//   bench_e2e MODEL [--prompt 512] [--gen 64] [--reps 3] [--threads T] [--batched 1,2,4,8,16] [--round K]
//
// Prints medians over --reps runs, and the memory-bandwidth roofline of a
// batch-1 decode step (weight bytes / measured read bandwidth).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "engine/single_sequence.h"
#include "kernels/kernels.h"
#include "kernels/thread_pool.h"
#include "model/model.h"

using namespace pl;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Streaming read bandwidth over a buffer far larger than the caches, all threads.
double read_bandwidth_gbs(ThreadPool& pool) {
  const size_t n = size_t{1} << 28;  // 1 GiB of floats
  std::vector<float> buf(n, 1.0f);
  std::vector<double> sums(pool.size());
  std::vector<double> runs;
  for (int rep = 0; rep < 5; ++rep) {
    auto t = Clock::now();
    pool.run([&](int ith, int nth) {
      const size_t a = n * ith / nth, b = n * (ith + 1) / nth;
      sums[ith] = kernels::dot_f32(buf.data() + a, buf.data() + a, static_cast<int64_t>(b - a));
    });
    runs.push_back(n * sizeof(float) / seconds_since(t) / 1e9);
  }
  return median(runs);
}

std::vector<int32_t> tokens(int n, int n_vocab, int seed) {
  std::vector<int32_t> t(n);
  uint32_t s = 12345u + seed;
  for (int i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    t[i] = 3 + static_cast<int32_t>((s >> 8) % (n_vocab - 3));
  }
  return t;
}

// K sequences with room for n_prompt + n_gen tokens each: their KV blocks and
// block tables, and a forward state for batches of up to max_tok tokens.
struct Sequences {
  Sequences(const Model& m, ThreadPool& pool, int K, int n_prompt, int n_gen, int max_tok)
      : m(m),
        pool(pool),
        per_seq_blocks((n_prompt + n_gen + kBlock - 1) / kBlock),
        kv({m.config().n_layer, m.config().n_head_kv, m.config().head_dim, kBlock, K * per_seq_blocks}),
        st(m.config(), max_tok, pool.size()),
        logits(static_cast<size_t>(K) * m.config().n_vocab),
        tables(K) {
    for (int b = 0; b < K; ++b)
      for (int i = 0; i < per_seq_blocks; ++i) tables[b].push_back(b * per_seq_blocks + i);
  }
  // Prompt of n tokens for sequence b at position 0 (seeded by `seed`).
  void add_prompt(Batch& batch, int b, int n, int seed) const {
    batch.add_seq(tokens(n, m.config().n_vocab, seed), 0, tables[b], true);
  }
  void run(const Batch& batch) { forward(m, batch, kv, st, pool, logits.data()); }
  // Decode step `step` of every sequence: one token each at position pos.
  void decode(int step, int pos) {
    Batch batch;
    for (int b = 0; b < static_cast<int>(tables.size()); ++b) {
      const int32_t tok = 3 + (step * 7 + b) % 1000;
      batch.add_seq(std::span<const int32_t>(&tok, 1), pos, tables[b], true);
    }
    run(batch);
  }

  static constexpr int kBlock = 32;
  const Model& m;
  ThreadPool& pool;
  int per_seq_blocks;
  KvStore kv;
  ForwardState st;
  std::vector<float> logits;  // one row a sequence: a batch wants the last token's only
  std::vector<std::vector<int32_t>> tables;
};

// B sequences decoding together: one batch of B tokens per step.
double batched_decode(const Model& m, ThreadPool& pool, int B, int n_prompt, int n_gen) {
  Sequences seqs(m, pool, B, n_prompt, n_gen, std::max(B, n_prompt));
  // Prefill each sequence (not timed).
  for (int b = 0; b < B; ++b) {
    Batch batch;
    seqs.add_prompt(batch, b, n_prompt, b);
    seqs.run(batch);
  }
  auto t = Clock::now();
  for (int step = 0; step < n_gen; ++step) seqs.decode(step, n_prompt + step);
  return static_cast<double>(B) * n_gen / seconds_since(t);
}

// One round as the runner serves K clients that arrive together: the K
// prompts prefilled in one batch (K x n_prompt tokens, as --batch-size 512
// takes them), then the decode steps of K tokens, n_gen tokens a client in
// all (the prefill samples the first).
struct Round {
  double prefill, step, total;  // s; step: the median decode step
};
Round round_of(const Model& m, ThreadPool& pool, int K, int n_prompt, int n_gen) {
  Sequences seqs(m, pool, K, n_prompt, n_gen, std::max(K * n_prompt, K));
  const auto t0 = Clock::now();
  Batch prefill;
  for (int b = 0; b < K; ++b) seqs.add_prompt(prefill, b, n_prompt, 200 + b);
  seqs.run(prefill);
  Round r{seconds_since(t0), 0, 0};
  std::vector<double> steps;
  for (int step = 1; step < n_gen; ++step) {
    const auto t = Clock::now();
    seqs.decode(step, n_prompt + step - 1);
    steps.push_back(seconds_since(t));
  }
  r.step = steps.empty() ? 0 : median(steps);
  r.total = seconds_since(t0);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_e2e MODEL [--prompt N] [--gen N] [--reps N] [--threads T] [--batched 1,2,4] [--round K]\n");
    return 2;
  }
  std::string path = argv[1];
  int n_prompt = 512, n_gen = 64, reps = 3, threads = default_thread_count();
  std::string batched;
  int round_k = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--prompt") n_prompt = std::stoi(v);
    else if (k == "--gen") n_gen = std::stoi(v);
    else if (k == "--reps") reps = std::stoi(v);
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--batched") batched = v;
    else if (k == "--round") round_k = std::stoi(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  try {
    auto m = Model::load(path);
    ThreadPool pool(threads);
    const ModelConfig& c = m->config();
    const double gb = m->weights().n_bytes / 1e9;
    std::printf("model %s: %s, %d layers, n_embd %d, %.3f GB of weights; kernels %s, %d threads\n", path.c_str(),
                c.arch.c_str(), c.n_layer, c.n_embd, gb, std::string(kernels::cpu_level_name()).c_str(), threads);
    if (round_k > 0) {  // only the round: --prompt and --gen per client
      for (int r = 0; r < reps; ++r) {
        const Round rd = round_of(*m, pool, round_k, n_prompt, n_gen);
        std::printf("round K=%d (%d-token prompts, %d generated): prefill %.0f ms, decode step %.1f ms (median), "
                    "round %.0f ms = %.1f tok/s\n",
                    round_k, n_prompt, n_gen, rd.prefill * 1e3, rd.step * 1e3, rd.total * 1e3,
                    round_k * n_gen / rd.total);
      }
      return 0;
    }
    const double bw = read_bandwidth_gbs(pool);
    std::printf("memory read bandwidth: %.1f GB/s -> batch-1 decode roofline %.1f tok/s\n", bw, bw / gb);

    std::vector<double> pp, tg;
    for (int r = 0; r < reps; ++r) {
      SingleSequence seq(*m, n_prompt + n_gen + 1, 512, pool);
      std::vector<int32_t> prompt = tokens(n_prompt, c.n_vocab, 100 + r);
      auto t = Clock::now();
      seq.eval(prompt);
      pp.push_back(n_prompt / seconds_since(t));
      t = Clock::now();
      for (int i = 0; i < n_gen; ++i) {
        int32_t tok = 3 + (i * 31) % 1000;
        seq.eval(std::span<const int32_t>(&tok, 1));
      }
      tg.push_back(n_gen / seconds_since(t));
    }
    std::printf("prefill %d tokens: %.1f tok/s (median of %d)\n", n_prompt, median(pp), reps);
    std::printf("decode  %d tokens: %.1f tok/s (median of %d) = %.0f%% of roofline, %.1f GB/s\n", n_gen, median(tg),
                reps, 100.0 * median(tg) / (bw / gb), median(tg) * gb);
    if (!batched.empty()) {
      std::stringstream ss(batched);
      std::string item;
      std::printf("batched decode (%d-token prompts, %d generated per sequence):\n", 128, n_gen);
      while (std::getline(ss, item, ',')) {
        int B = std::stoi(item);
        std::vector<double> runs;
        for (int r = 0; r < reps; ++r) runs.push_back(batched_decode(*m, pool, B, 128, n_gen));
        std::printf("  B=%-3d aggregate %.1f tok/s\n", B, median(runs));
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "Error: %s\n", e.what());
    return 1;
  }
  return 0;
}
