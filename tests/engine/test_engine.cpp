// End-to-end engine behaviour on random and real models.
#include <gtest/gtest.h>

#include <thread>

#include "engine/engine.h"
#include "engine_test_util.h"
#include "engine/single_sequence.h"
#include "model/model.h"
#include "model/random_model.h"
#include "model_fixture.h"
#include "test_util.h"

using namespace pl;
using namespace pl::test;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<Loaded> random_model(const std::string& type, int seed = 3) {
  return random_model_of(small_model_spec(type, seed));
}

GenerateRequest greedy(std::vector<int32_t> prompt, int n) {
  GenerateRequest g;
  g.prompt = std::move(prompt);
  g.sampling.temperature = 0;
  g.n_predict = n;
  return g;
}

std::vector<std::vector<int32_t>> prompts(int n, int n_vocab, int base_len) {
  std::vector<std::vector<int32_t>> ps;
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> p = {1};
    for (int j = 0; j < base_len + 7 * i; ++j) p.push_back(3 + (i * 131 + j * 17) % (n_vocab - 3));
    ps.push_back(p);
  }
  return ps;
}

// The stats snapshot is published right after a step's events: wait for it.
void wait_idle(const Engine& e) {
  for (int i = 0; i < 5000 && (e.stats().kv_blocks_used > 0 || e.stats().n_running > 0); ++i)
    std::this_thread::sleep_for(1ms);
}

// Each prompt alone at parallel 1, then all at once at parallel 8 (some arriving
// while others decode, prompts chunked by a small batch): same tokens.
void check_batched_equals_alone(Loaded& l, int n_gen) {
  auto ps = prompts(8, l.model->config().n_vocab, 20);
  std::vector<std::vector<int32_t>> alone;
  {
    Engine e(*l.model, *l.tok, cfg(1, 256));
    for (auto& p : ps) {
      auto r = e.submit(greedy(p, n_gen));
      alone.push_back(drain(*r).tokens);
    }
  }
  EngineConfig c = cfg(8, 8 * 256, 16);
  c.burst_gap_ms = 0;  // no gathering: the later ones must arrive mid-decode
  Engine e(*l.model, *l.tok, c);
  std::vector<std::unique_ptr<Request>> reqs;
  for (size_t i = 0; i < ps.size(); ++i) {
    reqs.push_back(e.submit(greedy(ps[i], n_gen)));
    if (i == 3) std::this_thread::sleep_for(5ms);  // later ones arrive mid-decode
  }
  for (size_t i = 0; i < ps.size(); ++i) {
    Result r = drain(*reqs[i]);
    EXPECT_EQ(r.tokens, alone[i]) << "prompt " << i;
    EXPECT_EQ(r.last.reason, FinishReason::Length);
    EXPECT_EQ(r.last.timings.n_generated, n_gen);
    EXPECT_EQ(r.last.timings.n_prompt, static_cast<int>(ps[i].size()));
  }
}

}  // namespace

TEST(Engine, BatchedEqualsAloneF32) {
  auto l = random_model("f32");
  check_batched_equals_alone(*l, 24);
}

TEST(Engine, BatchedEqualsAloneQ8_0) {
  auto l = random_model("q8_0");
  check_batched_equals_alone(*l, 24);
}

TEST(Engine, BatchedEqualsAloneStories260K) {
  REQUIRE_TESTDATA();
  auto l = stories();
  check_batched_equals_alone(*l, 40);
}

TEST(Engine, GreedyMatchesSingleSequenceBaseline) {
  REQUIRE_TESTDATA();
  auto l = stories();
  std::vector<int32_t> expected = read_ids(kTestdata / "models/stories260K.greedy200.ids.txt");
  Engine e(*l->model, *l->tok, cfg(4, 1024));
  auto r = e.submit(greedy({1}, 200));
  Result res = drain(*r);
  std::vector<int32_t> got = {1};
  got.insert(got.end(), res.tokens.begin(), res.tokens.end());
  EXPECT_EQ(got, expected);
  EXPECT_EQ(res.text, " " + read_file(kTestdata / "models/stories260K.greedy200.expected.txt"));
}

TEST(Engine, SeededSamplingIndependentOfNeighbours) {
  auto l = random_model("f32");
  auto ps = prompts(4, l->model->config().n_vocab, 10);
  auto sampled = [&](std::vector<int32_t> p) {
    GenerateRequest g;
    g.prompt = std::move(p);
    g.sampling.temperature = 1.0f;
    g.sampling.seed = 1234;
    g.n_predict = 30;
    return g;
  };
  std::vector<int32_t> alone;
  {
    Engine e(*l->model, *l->tok, cfg(1, 256));
    alone = drain(*e.submit(sampled(ps[0]))).tokens;
  }
  Engine e(*l->model, *l->tok, cfg(4, 1024));
  std::vector<std::unique_ptr<Request>> reqs;
  for (auto& p : ps) reqs.push_back(e.submit(sampled(p)));
  EXPECT_EQ(drain(*reqs[0]).tokens, alone);
  for (size_t i = 1; i < reqs.size(); ++i) drain(*reqs[i]);
}

// Requests that arrive a few ms apart at an idle engine share one prefill
// step (and give the same tokens as alone); a lone request waits one gap.
TEST(Engine, BurstArrivingOverMillisecondsSharesOnePrefillStep) {
  auto l = random_model("f32");
  auto ps = prompts(4, l->model->config().n_vocab, 20);
  const int n_gen = 6;
  std::vector<std::vector<int32_t>> alone;
  {
    Engine e(*l->model, *l->tok, cfg(1, 256));
    for (auto& p : ps) alone.push_back(drain(*e.submit(greedy(p, n_gen))).tokens);
  }
  EngineConfig c = cfg(8, 8 * 256);
  c.burst_gap_ms = 200;  // far above the 5 ms between arrivals, even on a busy machine
  Engine e(*l->model, *l->tok, c);
  std::vector<std::unique_ptr<Request>> reqs;
  for (auto& p : ps) {
    reqs.push_back(e.submit(greedy(p, n_gen)));
    std::this_thread::sleep_for(5ms);
  }
  for (size_t i = 0; i < ps.size(); ++i) EXPECT_EQ(drain(*reqs[i]).tokens, alone[i]) << "prompt " << i;
  // One step prefills all four and samples their first tokens; each later step
  // samples one more token of each: n_gen steps in all, none for a late arrival.
  EXPECT_EQ(e.stats().steps, static_cast<uint64_t>(n_gen));

  // A lone request at an idle engine waits one gap (not the 4-gap limit) for companions.
  c.burst_gap_ms = 100;
  Engine lone(*l->model, *l->tok, c);
  Result r = drain(*lone.submit(greedy(ps[0], n_gen)));
  EXPECT_EQ(r.tokens, alone[0]);
  EXPECT_GE(r.last.timings.queue_ms, 90);
  EXPECT_LT(r.last.timings.queue_ms, 350);

  // A full --parallel's worth waiting ends the gathering at once.
  c.n_parallel = 1;
  Engine full(*l->model, *l->tok, c);
  r = drain(*full.submit(greedy(ps[0], n_gen)));
  EXPECT_LT(r.last.timings.queue_ms, 90);
}

TEST(Engine, PrefixCacheComputesOnlyNewTokens) {
  auto l = random_model("f32");
  std::vector<int32_t> shared = prompts(1, l->model->config().n_vocab, 100)[0];  // 101 tokens
  std::vector<int32_t> second = shared;
  second.insert(second.end(), {5, 6, 7, 8, 9});
  std::vector<int32_t> without_cache;
  {
    EngineConfig c = cfg(2, 1024);
    c.prefix_cache = false;
    Engine e(*l->model, *l->tok, c);
    without_cache = drain(*e.submit(greedy(second, 16))).tokens;
  }
  Engine e(*l->model, *l->tok, cfg(2, 1024));
  drain(*e.submit(greedy(shared, 8)));
  const uint64_t before = e.stats().prompt_tokens;
  Result r = drain(*e.submit(greedy(second, 16)));
  const uint64_t computed = e.stats().prompt_tokens - before;
  // 101 shared tokens hold 3 full 32-token blocks: 96 tokens come from the cache.
  EXPECT_EQ(r.last.timings.n_cached, 96);
  EXPECT_EQ(computed, second.size() - 96);
  EXPECT_EQ(r.tokens, without_cache);
  EngineStats s = e.stats();
  EXPECT_EQ(s.prefix_queries, 2u);
  EXPECT_EQ(s.prefix_hit_tokens, 96u);
}

TEST(Engine, PreemptionWithASmallPoolStillCompletesCorrectly) {
  auto l = random_model("f32");
  auto ps = prompts(6, l->model->config().n_vocab, 30);
  std::vector<std::vector<int32_t>> alone;
  {
    Engine e(*l->model, *l->tok, cfg(1, 512));
    for (auto& p : ps) alone.push_back(drain(*e.submit(greedy(p, 40))).tokens);
  }
  // 6 sequences of up to ~106 tokens each, in a pool of 8 blocks x 32 = 256 tokens.
  EngineConfig c = cfg(6, 256);
  c.n_ctx_seq = 200;
  Engine e(*l->model, *l->tok, c);
  std::vector<std::unique_ptr<Request>> reqs;
  for (auto& p : ps) reqs.push_back(e.submit(greedy(p, 40)));
  for (size_t i = 0; i < ps.size(); ++i) EXPECT_EQ(drain(*reqs[i]).tokens, alone[i]) << i;
  EXPECT_GT(e.stats().preemptions, 0u);
  wait_idle(e);
  EXPECT_EQ(e.stats().kv_blocks_used, 0);
}

TEST(Engine, SetParallelShrinkAndGrowUnderLoad) {
  auto l = random_model("f32");
  auto ps = prompts(8, l->model->config().n_vocab, 10);
  Engine e(*l->model, *l->tok, cfg(8, 8 * 256));
  std::vector<std::unique_ptr<Request>> reqs;
  for (auto& p : ps) reqs.push_back(e.submit(greedy(p, 150)));
  // Wait until all 8 run, then shrink to 2: nothing is dropped, no new admissions until below 2.
  for (int i = 0; i < 2000 && e.stats().n_running < 8; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(e.stats().n_running, 8);
  e.set_parallel(2);
  std::vector<std::unique_ptr<Request>> more;
  for (auto& p : ps) more.push_back(e.submit(greedy(p, 5)));
  int max_running_after = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    Result r = drain(*reqs[i]);
    // Finished normally: all 150 tokens, or an end-of-text token (the random model may sample it).
    EXPECT_TRUE(r.last.reason == FinishReason::Length ? r.tokens.size() == 150u : r.last.reason == FinishReason::Stop)
        << i << " " << finish_reason_name(r.last.reason);
  }
  // Once the 8 have drained (and the snapshot shows it), at most 2 run.
  for (int i = 0; i < 5000 && e.stats().n_running > 2; ++i) std::this_thread::sleep_for(1ms);
  for (int i = 0; i < 20; ++i) {
    max_running_after = std::max(max_running_after, e.stats().n_running);
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_LE(max_running_after, 2);
  // Grow again: the waiting ones are admitted together.
  e.set_parallel(8);
  for (auto& r : more) {
    Result res = drain(*r);
    EXPECT_TRUE(res.last.reason == FinishReason::Length || res.last.reason == FinishReason::Stop);
  }
}

TEST(Engine, CancellationFreesBlocks) {
  auto l = random_model("f32");
  auto ps = prompts(3, l->model->config().n_vocab, 50);
  Engine e(*l->model, *l->tok, cfg(3, 3 * 512));
  {
    std::vector<std::unique_ptr<Request>> reqs;
    for (auto& p : ps) reqs.push_back(e.submit(greedy(p, 100000)));
    Event ev;
    ASSERT_TRUE(reqs[0]->next(ev, 10000ms));
    for (int i = 0; i < 5000 && e.stats().kv_blocks_used == 0; ++i) std::this_thread::sleep_for(1ms);
    EXPECT_GT(e.stats().kv_blocks_used, 0);
    reqs[1]->cancel();
    Result r = drain(*reqs[1]);
    EXPECT_EQ(r.last.reason, FinishReason::Cancelled);
  }  // the others are dropped here: their handles cancel them
  wait_idle(e);
  EXPECT_EQ(e.stats().kv_blocks_used, 0);
  EXPECT_EQ(e.stats().n_running, 0);
  EXPECT_EQ(e.stats().finished.at("cancelled"), 3u);
}

TEST(Engine, StopStringsAndEndOfGeneration) {
  REQUIRE_TESTDATA();
  auto l = stories();
  Engine e(*l->model, *l->tok, cfg(2, 1024));
  GenerateRequest g = greedy({1}, 200);
  g.stop = {"Lily"};
  Result r = drain(*e.submit(std::move(g)));
  EXPECT_EQ(r.text, " Once upon a time, there was a little girl named ");
  EXPECT_EQ(r.last.reason, FinishReason::Stop);
}

TEST(Engine, RejectsBadRequests) {
  auto l = random_model("f32");
  Engine e(*l->model, *l->tok, cfg(1, 64));
  EXPECT_THROW(e.submit(greedy({}, 4)), Error);
  EXPECT_THROW(e.submit(greedy({1, 100000}, 4)), Error);
  EXPECT_THROW(e.submit(greedy(std::vector<int32_t>(64, 5), 4)), Error);  // no room to generate
  GenerateRequest bad = greedy({1, 2}, 4);
  bad.sampling.top_p = 2;
  EXPECT_THROW(e.submit(std::move(bad)), Error);
  EXPECT_THROW(e.set_parallel(0), Error);
}

TEST(Engine, EmbeddingIsTheMeanHiddenState) {
  auto l = random_model("f32");
  std::vector<int32_t> p = {1, 20, 30, 40, 50};
  GenerateRequest g;
  g.prompt = p;
  g.embedding = true;
  Engine e(*l->model, *l->tok, cfg(2, 256, 2));  // batch 2: the prompt is chunked
  Result r = drain(*e.submit(std::move(g)));
  ASSERT_EQ(r.last.embedding.size(), 64u);
  // Reference: hidden states from one forward pass of the whole prompt.
  ThreadPool pool(1);
  KvStore kv({2, 2, 16, 32, 1});
  ForwardState st(l->model->config(), 8, 1);
  Batch b;
  std::vector<int32_t> table = {0};
  b.add_seq(p, 0, table, false);
  std::vector<float> hidden(5 * 64);
  forward(*l->model, b, kv, st, pool, nullptr, hidden.data());
  for (int d = 0; d < 64; ++d) {
    float mean = 0;
    for (int t = 0; t < 5; ++t) mean += hidden[t * 64 + d] / 5;
    EXPECT_NEAR(r.last.embedding[d], mean, 1e-4f) << d;
  }
}

TEST(Engine, NPredictZeroGeneratesNothing) {
  auto l = random_model("f32");
  Engine e(*l->model, *l->tok, cfg(1, 256));
  Result r = drain(*e.submit(greedy({1, 5, 6, 7}, 0)));
  EXPECT_TRUE(r.tokens.empty());
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.last.reason, FinishReason::Length);
  EXPECT_EQ(r.last.timings.n_generated, 0);
  EXPECT_EQ(r.last.timings.n_prompt, 4);
}

// An embedding request preempted mid-prefill recomputes its prompt; the mean must not count chunks twice.
TEST(Engine, PreemptedEmbeddingEqualsAlone) {
  auto l = random_model("f32");
  std::vector<int32_t> emb_prompt = prompts(1, l->model->config().n_vocab, 100)[0];  // 101 tokens
  auto embed = [&](Engine& e) {
    GenerateRequest g;
    g.prompt = emb_prompt;
    g.embedding = true;
    return e.submit(std::move(g));
  };
  std::vector<float> alone;
  {
    EngineConfig c = cfg(1, 256, 16);
    Engine e(*l->model, *l->tok, c);
    alone = drain(*embed(e)).last.embedding;
  }
  EngineConfig c = cfg(2, 128, 16);
  c.n_ctx_seq = 128;
  Engine e(*l->model, *l->tok, c);
  // A 61-token prompt generating 60 competes with the 101-token embedding for a 4-block pool.
  auto gen = e.submit(greedy(prompts(1, l->model->config().n_vocab, 60)[0], 60));
  Result r = drain(*embed(e));
  drain(*gen);
  EXPECT_GT(e.stats().preemptions, 0u);
  ASSERT_EQ(r.last.embedding.size(), alone.size());
  for (size_t i = 0; i < alone.size(); ++i) EXPECT_NEAR(r.last.embedding[i], alone[i], 1e-3f) << i;
}

// A request's own num_ctx caps its sequence below the engine's; truncate keeps
// the first token and the most recent ones instead of failing.
TEST(Engine, PerRequestContextAndTruncation) {
  auto l = random_model("f32");
  Engine e(*l->model, *l->tok, cfg(1, 256));
  std::vector<int32_t> long_prompt = prompts(1, l->model->config().n_vocab, 40)[0];  // 41 tokens
  GenerateRequest g = greedy(long_prompt, 100);
  g.n_ctx = 32;
  EXPECT_THROW(e.submit(g), Error);  // does not fit 32 without truncation

  g.truncate = true;
  Result r = drain(*e.submit(g));
  // Kept: the first token and the last 15 (half the context, less one) -> 16 prompt tokens,
  // then generation stops when the 32-token context is full.
  EXPECT_EQ(r.last.timings.n_prompt, 16);
  EXPECT_EQ(r.last.reason, FinishReason::Length);
  EXPECT_EQ(r.last.timings.n_generated, 16);

  // Same as submitting the truncated prompt by hand.
  std::vector<int32_t> cut = {long_prompt.front()};
  cut.insert(cut.end(), long_prompt.end() - 15, long_prompt.end());
  GenerateRequest h = greedy(cut, 100);
  h.n_ctx = 32;
  EXPECT_EQ(drain(*e.submit(h)).tokens, r.tokens);

  // An embedding keeps the beginning.
  GenerateRequest emb;
  emb.prompt = long_prompt;
  emb.embedding = true;
  emb.n_ctx = 20;
  emb.truncate = true;
  Result er = drain(*e.submit(emb));
  EXPECT_EQ(er.last.timings.n_prompt, 20);
}
