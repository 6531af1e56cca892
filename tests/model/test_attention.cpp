// attention() against a straightforward float64 softmax(q.K^T/sqrt(D)) V, at
// every CPU level this machine runs: odd head sizes, GQA ratios 1/4/8, KV
// block sizes that split into several key sub-blocks or fewer than one, and a
// batch mixing prefill chunks (from position 0 and mid-sequence) with decode
// tokens of other sequences, in shuffled KV blocks whose unwritten slots hold
// NaN. Decode tokens (few rows per KV head) take the kernel's fp16-direct path,
// prefill chunks the converted one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "kernels/kernels.h"
#include "kernels/kernels_internal.h"
#include "kernels/thread_pool.h"
#include "model/attention.h"

using namespace pl;

namespace {

struct SeqSpec {
  int first_pos;  // query tokens at positions first_pos .. first_pos + n_tok - 1
  int n_tok;
};

struct Shape {
  int head_dim, n_head_kv, n_group, block_size;
};

// Levels the CPU supports, lowest first; the active level is restored at the end of the test.
std::vector<kernels::CpuLevel> levels() {
  std::vector<kernels::CpuLevel> v;
  for (int l = 0; l <= static_cast<int>(kernels::cpu_level_supported()); ++l) v.push_back(static_cast<kernels::CpuLevel>(l));
  return v;
}

void check_shape(const Shape& sh, const std::vector<SeqSpec>& seqs, uint32_t seed) {
  ModelConfig c;
  c.head_dim = sh.head_dim;
  c.n_head_kv = sh.n_head_kv;
  c.n_head = sh.n_head_kv * sh.n_group;
  const int D = c.head_dim, B = sh.block_size, KV = c.n_embd_kv(), Q = c.n_embd_q();
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);

  // Blocks of all sequences, shuffled, so each sequence's table is scattered.
  std::vector<int> n_blocks_of;
  int n_blocks = 0;
  for (const SeqSpec& s : seqs) {
    n_blocks_of.push_back((s.first_pos + s.n_tok + B - 1) / B);
    n_blocks += n_blocks_of.back();
  }
  std::vector<int32_t> perm(n_blocks);
  for (int i = 0; i < n_blocks; ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<std::vector<int32_t>> tables(seqs.size());
  for (size_t s = 0, at = 0; s < seqs.size(); ++s)
    for (int b = 0; b < n_blocks_of[s]; ++b) tables[s].push_back(perm[at++]);

  // Every position's K and V (fp32 as written, fp16 as the reference sees them).
  KvStore kv({1, c.n_head_kv, D, B, n_blocks});
  // Slots no sequence wrote hold NaN (fp16 0x7E00): a kernel that lets an
  // unwritten key or value into a result (reused blocks hold anything) fails.
  for (int b = 0; b < n_blocks; ++b)
    for (int h = 0; h < c.n_head_kv; ++h) {
      std::fill_n(kv.k(0, b, h), static_cast<size_t>(B) * D, uint16_t{0x7E00});
      std::fill_n(kv.v(0, b, h), static_cast<size_t>(B) * D, uint16_t{0x7E00});
    }
  std::vector<std::vector<float>> k_all(seqs.size()), v_all(seqs.size());
  for (size_t s = 0; s < seqs.size(); ++s) {
    const int n = seqs[s].first_pos + seqs[s].n_tok;
    k_all[s].resize(static_cast<size_t>(n) * KV);
    v_all[s].resize(static_cast<size_t>(n) * KV);
    for (float& x : k_all[s]) x = 2.0f * uni(rng);  // scores spread over several units
    for (float& x : v_all[s]) x = uni(rng);
    Batch hist;
    std::vector<int32_t> toks(n, 0);
    hist.add_seq(toks, 0, tables[s], false);
    store_kv(c, 0, hist, k_all[s].data(), v_all[s].data(), kv);
    for (float& x : k_all[s]) x = kernels::fp16_to_fp32(kernels::fp32_to_fp16(x));
    for (float& x : v_all[s]) x = kernels::fp16_to_fp32(kernels::fp32_to_fp16(x));
  }

  Batch batch;
  for (size_t s = 0; s < seqs.size(); ++s) {
    std::vector<int32_t> toks(seqs[s].n_tok, 0);
    batch.add_seq(toks, seqs[s].first_pos, tables[s], false);
  }
  const int T = batch.n_tokens();
  std::vector<float> q(static_cast<size_t>(T) * Q);
  for (float& x : q) x = 2.0f * uni(rng);

  // float64 reference: plain softmax over each token's visible keys.
  std::vector<double> want(static_cast<size_t>(T) * Q);
  for (size_t s = 0; s < seqs.size(); ++s) {
    for (int32_t t = batch.seqs[s].tok_begin; t < batch.seqs[s].tok_end; ++t) {
      const int n_keys = batch.pos[t] + 1;
      for (int h = 0; h < c.n_head; ++h) {
        const int hk = h / sh.n_group;
        const float* qr = q.data() + static_cast<size_t>(t) * Q + h * D;
        std::vector<double> sc(n_keys);
        double mx = -INFINITY;
        for (int j = 0; j < n_keys; ++j) {
          double dot = 0.0;
          for (int d = 0; d < D; ++d) dot += static_cast<double>(qr[d]) * k_all[s][static_cast<size_t>(j) * KV + hk * D + d];
          sc[j] = dot / std::sqrt(static_cast<double>(D));
          mx = std::max(mx, sc[j]);
        }
        double sum = 0.0;
        for (double& x : sc) sum += (x = std::exp(x - mx));
        for (int d = 0; d < D; ++d) {
          double o = 0.0;
          for (int j = 0; j < n_keys; ++j) o += sc[j] * v_all[s][static_cast<size_t>(j) * KV + hk * D + d];
          want[static_cast<size_t>(t) * Q + h * D + d] = o / sum;
        }
      }
    }
  }

  ThreadPool pool(2);
  const kernels::CpuLevel saved = kernels::cpu_level();
  for (kernels::CpuLevel level : levels()) {
    kernels::detail::set_level_for_testing(level);
    AttentionScratch scratch;
    std::vector<float> out(static_cast<size_t>(T) * Q, NAN);
    attention(c, 0, batch, kv, q.data(), out.data(), scratch, pool);
    double max_err = 0.0;
    for (size_t i = 0; i < out.size(); ++i) {
      const double err = std::abs(out[i] - want[i]);
      if (!(err <= max_err)) max_err = err;  // a NaN output sticks (std::max would drop it)
    }
    // Outputs are averages of values in [-1, 1]; float accumulation over up to
    // 300 keys stays well inside 2e-6 (the exp alone is good to ~1e-7).
    EXPECT_LT(max_err, 2e-6) << "level " << kernels::cpu_level_name(level) << " head_dim " << D << " group "
                             << sh.n_group << " block " << B;
  }
  kernels::detail::set_level_for_testing(saved);
}

// Prefill from 0 crossing many blocks, single tokens at block edges, a chunk
// starting mid-block, decode tokens deep in a sequence.
const std::vector<SeqSpec> kMixedBatch = {{0, 300}, {0, 1}, {31, 2}, {100, 37}, {257, 1}, {63, 65}, {5, 1}};

}  // namespace

TEST(AttentionReference, HeadDim64) {
  for (int g : {1, 4, 8}) check_shape({64, 2, g, 32}, kMixedBatch, 1 + g);
}

TEST(AttentionReference, HeadDim128) {
  for (int g : {1, 4, 8}) check_shape({128, 2, g, 32}, kMixedBatch, 11 + g);
}

// Widths that leave partial vectors (8 < 16 lanes, 80 = 5 x 16, 72), and KV
// blocks smaller than a key sub-block or holding two of them.
TEST(AttentionReference, OddWidthsAndBlockSizes) {
  check_shape({8, 1, 4, 4}, kMixedBatch, 21);
  check_shape({80, 1, 2, 64}, kMixedBatch, 22);
  check_shape({72, 3, 1, 16}, kMixedBatch, 23);
  check_shape({64, 1, 8, 48}, kMixedBatch, 24);
}
