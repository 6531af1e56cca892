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
      max_diff = std::max(max_diff, static_cast<double>(std::fabs(ref[i] - s.logits[i])));
      max_ref = std::max(max_ref, static_cast<double>(std::fabs(ref[i])));
    }
    EXPECT_LE(max_diff, tol * max_ref) << type << " sequence " << si;
  }
}

}  // namespace

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
