// A sequence's logits do not depend on what else is in its batch: the same
// tokens run alone, or interleaved with other sequences at other positions in
// shuffled (paged) KV blocks, give the same logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "kernels/kernels.h"
#include "kernels/thread_pool.h"
#include "model/attention.h"
#include "model/model.h"
#include "model/random_model.h"
#include "model_fixture.h"
#include "test_util.h"

using namespace pl;
using namespace pl::test;

namespace {

struct SeqRun {
  std::vector<int32_t> tokens;
  std::vector<int32_t> blocks;
  int done = 0;
  std::vector<float> logits;  // [n_tokens, n_vocab]
};

void check_invariance(const std::string& type, float tol) {
  TempDir dir;
  write_random_model(small_model_spec(type, 11), dir.file("m.gguf"), 2);
  auto model = Model::load(dir.file("m.gguf"));
  const int V = model->config().n_vocab;
  ThreadPool pool(2);

  std::mt19937 rng(5);
  std::vector<SeqRun> seqs(4);
  const int lengths[] = {45, 26, 9, 33};
  for (size_t s = 0; s < seqs.size(); ++s)
    for (int i = 0; i < lengths[s]; ++i) seqs[s].tokens.push_back(static_cast<int32_t>(rng() % V));

  // Paged: 8-token blocks handed out in a shuffled order.
  const int block_size = 8;
  std::vector<int32_t> free_blocks(32);
  for (int i = 0; i < 32; ++i) free_blocks[i] = i;
  std::shuffle(free_blocks.begin(), free_blocks.end(), rng);
  for (SeqRun& s : seqs) {
    int n = (static_cast<int>(s.tokens.size()) + block_size - 1) / block_size;
    s.blocks.assign(free_blocks.end() - n, free_blocks.end());
    free_blocks.resize(free_blocks.size() - n);
    s.logits.resize(s.tokens.size() * V);
  }
  KvStore kv({model->config().n_layer, model->config().n_head_kv, model->config().head_dim, block_size, 32});
  ForwardState st(model->config(), 64, pool.size());
  std::vector<float> logits(64 * V);

  // Each step takes a random chunk (1..8 tokens) from a random subset of the unfinished sequences.
  for (int step = 0; step < 200; ++step) {
    Batch b;
    std::vector<SeqRun*> in_batch;
    for (SeqRun& s : seqs) {
      if (s.done == static_cast<int>(s.tokens.size()) || rng() % 3 == 0) continue;
      int n = std::min<int>(1 + rng() % 8, static_cast<int>(s.tokens.size()) - s.done);
      b.add_seq(std::span<const int32_t>(s.tokens).subspan(s.done, n), s.done, s.blocks, false);
      in_batch.push_back(&s);
    }
    if (b.n_tokens() == 0) continue;
    std::fill(b.want_logits.begin(), b.want_logits.end(), 1);
    forward(*model, b, kv, st, pool, logits.data());
    for (size_t i = 0; i < in_batch.size(); ++i) {
      SeqRun& s = *in_batch[i];
      const BatchSeq& bs = b.seqs[i];
      for (int32_t t = bs.tok_begin; t < bs.tok_end; ++t)
        std::copy_n(logits.data() + static_cast<size_t>(t) * V, V, s.logits.data() + static_cast<size_t>(s.done++) * V);
    }
  }

  for (size_t si = 0; si < seqs.size(); ++si) {
    const SeqRun& s = seqs[si];
    ASSERT_EQ(s.done, static_cast<int>(s.tokens.size()));
    // Alone: one pass over the whole sequence in contiguous blocks of the same
    // size. (A different block size changes the order of attention's online
    // softmax; the ~1e-7 differences can flip an activation's 8-bit rounding
    // and move quantized models' logits by ~1e-2, which is not a batching effect.)
    KvStore kv_alone({model->config().n_layer, model->config().n_head_kv, model->config().head_dim, block_size, 32});
    std::vector<int32_t> blocks_alone(32);
    for (int i = 0; i < 32; ++i) blocks_alone[i] = i;
    Batch b;
    b.add_seq(s.tokens, 0, blocks_alone, false);
    std::fill(b.want_logits.begin(), b.want_logits.end(), 1);
    forward(*model, b, kv_alone, st, pool, logits.data());
    std::span<const float> ref(logits.data(), s.tokens.size() * V);
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      const double d = std::fabs(ref[i] - s.logits[i]);
      if (!(d <= max_diff)) max_diff = d;  // NaN sticks (std::max would drop it)
      max_ref = std::max(max_ref, static_cast<double>(std::fabs(ref[i])));
    }
    EXPECT_LE(max_diff, tol * max_ref) << type << " sequence " << si;
  }
}

// Rows that want no logits still store their K and V, and the rows that want
// them get the same logits as when every row is computed: forward computes
// the last layer's attention output and feed-forward for the read rows only.
void check_output_rows(const std::string& type, float tol) {
  TempDir dir;
  write_random_model(small_model_spec(type, 12), dir.file("m.gguf"), 2);
  auto model = Model::load(dir.file("m.gguf"));
  const ModelConfig& c = model->config();
  const int V = c.n_vocab;
  ThreadPool pool(2);
  std::mt19937 rng(9);
  const int block_size = 8, n_blocks = 32;
  std::vector<std::vector<int32_t>> tokens(3), blocks(3);
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < 40; ++i) tokens[s].push_back(static_cast<int32_t>(rng() % V));
    for (int i = 0; i < 5; ++i) blocks[s].push_back(s * 5 + i);
  }
  KvStore kv_all({c.n_layer, c.n_head_kv, c.head_dim, block_size, n_blocks});
  KvStore kv_some({c.n_layer, c.n_head_kv, c.head_dim, block_size, n_blocks});
  ForwardState st(c, 64, pool.size());
  std::vector<float> all(64 * V), some(64 * V);
  std::vector<int> done(3, 0);
  int n_none = 0, n_partial = 0;
  while (done[0] < 40 || done[1] < 40 || done[2] < 40) {
    Batch b;
    for (int s = 0; s < 3; ++s) {
      if (done[s] == 40 || rng() % 4 == 0) continue;
      const int n = std::min<int>(1 + rng() % 9, 40 - done[s]);
      b.add_seq(std::span<const int32_t>(tokens[s]).subspan(done[s], n), done[s], blocks[s], false);
      done[s] += n;
    }
    if (b.n_tokens() == 0) continue;
    Batch b_all = b;
    std::fill(b_all.want_logits.begin(), b_all.want_logits.end(), 1);
    ASSERT_EQ(forward(*model, b_all, kv_all, st, pool, all.data()), b.n_tokens());
    // Some rows (any of them, not only a sequence's last; possibly none) want logits.
    std::vector<int> wanted;
    for (int t = 0; t < b.n_tokens(); ++t) {
      b.want_logits[t] = rng() % 3 == 0;
      if (b.want_logits[t]) wanted.push_back(t);
    }
    n_none += wanted.empty();
    n_partial += !wanted.empty() && static_cast<int>(wanted.size()) < b.n_tokens();
    ASSERT_EQ(forward(*model, b, kv_some, st, pool, some.data()), static_cast<int>(wanted.size()));
    for (size_t i = 0; i < wanted.size(); ++i) {
      const float* ref = all.data() + static_cast<size_t>(wanted[i]) * V;
      const float* got = some.data() + i * V;
      double max_diff = 0, max_ref = 0;
      for (int v = 0; v < V; ++v) {
        const double d = std::fabs(ref[v] - got[v]);
        if (!(d <= max_diff)) max_diff = d;  // NaN sticks
        max_ref = std::max(max_ref, static_cast<double>(std::fabs(ref[v])));
      }
      ASSERT_LE(max_diff, tol * max_ref) << type << ": row " << wanted[i] << " of " << b.n_tokens();
    }
  }
  EXPECT_GT(n_none, 0);
  EXPECT_GT(n_partial, 0);
  // The cache holds the same K and V either way: the last rows of each sequence, all wanted, agree.
  Batch last;
  for (int s = 0; s < 3; ++s) last.add_seq(std::span<const int32_t>(tokens[s]).subspan(39, 1), 39, blocks[s], true);
  // (Position 39 again: it overwrites its own K and V with the same values.)
  ASSERT_EQ(forward(*model, last, kv_all, st, pool, all.data()), 3);
  ASSERT_EQ(forward(*model, last, kv_some, st, pool, some.data()), 3);
  for (size_t i = 0; i < static_cast<size_t>(3) * V; ++i) ASSERT_NEAR(all[i], some[i], tol * 100);
}

}  // namespace

TEST(OutputRows, F32) { check_output_rows("f32", 1e-5f); }
TEST(OutputRows, Q4_0) { check_output_rows("q4_0", 1e-5f); }

TEST(BatchInvariance, F32) { check_invariance("f32", 1e-4f); }
TEST(BatchInvariance, Q8_0) { check_invariance("q8_0", 1e-4f); }
TEST(BatchInvariance, Q4_0) { check_invariance("q4_0", 1e-4f); }
TEST(BatchInvariance, F16) { check_invariance("f16", 1e-4f); }

// Analytic: when one key matches the query far better than the others, the
// softmax is one-hot and attention returns exactly that key's value.
TEST(Attention, OneHotAttendsToTheMatchingValue) {
  ModelConfig c;
  c.n_head = 2;
  c.n_head_kv = 1;
  c.head_dim = 4;
  const int B = 4;
  KvStore kv({1, 1, 4, B, 3});
  std::vector<int32_t> table = {2, 0};  // logical block 0 -> physical 2, 1 -> 0
  // 6 positions of keys/values; key at position 4 is (100, 0, 0, 0), the rest orthogonal to the query.
  std::vector<float> k(6 * 4, 0.0f), v(6 * 4);
  for (int p = 0; p < 6; ++p) {
    k[p * 4 + 1] = 1.0f;
    for (int d = 0; d < 4; ++d) v[p * 4 + d] = static_cast<float>(10 * p + d);
  }
  k[4 * 4 + 0] = 100.0f;
  k[4 * 4 + 1] = 0.0f;
  Batch b;
  std::vector<int32_t> toks(6, 0);
  b.add_seq(toks, 0, table, false);
  store_kv(c, 0, b, k.data(), v.data(), kv);
  // Query of the token at position 5 for both heads: (1, 0, 0, 0) -> score 50 vs 0.
  Batch q_batch;
  std::vector<int32_t> one = {0};
  q_batch.add_seq(one, 5, table, false);
  std::vector<float> q = {1, 0, 0, 0, 1, 0, 0, 0}, out(8, -1.0f);
  AttentionScratch scratch;
  ThreadPool pool(2);
  attention(c, 0, q_batch, kv, q.data(), out.data(), scratch, pool);
  for (int h = 0; h < 2; ++h)
    for (int d = 0; d < 4; ++d) EXPECT_NEAR(out[h * 4 + d], 40.0f + d, 1e-3f) << h << " " << d;
  // The same query at position 3 cannot see position 4 (causal): uniform over positions 0..3.
  Batch early;
  early.add_seq(one, 3, table, false);
  attention(c, 0, early, kv, q.data(), out.data(), scratch, pool);
  for (int d = 0; d < 4; ++d) EXPECT_NEAR(out[d], 15.0f + d, 1e-3f);
}
