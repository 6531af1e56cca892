// The `parallama runner` binary end to end: a child process on a free loopback
// port, driven over HTTP.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "runner_harness.h"

using namespace pl::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Eight different story prompts; the last is long (~190 tokens), so with
// --batch-size 16 its prefill is cut into many chunks (and with 40 more it
// still fits the 256 tokens per sequence of both runners).
std::vector<std::string> story_prompts() {
  std::string long_prompt;
  for (int i = 0; i < 5; ++i)
    long_prompt += "Lily and Ben went to the park. They saw a big tree and a little bird. The bird sang a song. ";
  return {"Once upon a time",
          "The cat sat on the mat.",
          "Lily and Ben went to the park to play with a ball.",
          "Tom had a big red car",
          "One day, a little bird",
          "The sun was shining and the sky was blue. A girl named Sue",
          "There was a dog named Max",
          long_prompt};
}

json greedy(json prompt, int n_predict, bool stream = false) {
  return json{{"prompt", std::move(prompt)}, {"n_predict", n_predict}, {"temperature", 0}, {"stream", stream}};
}

// A random Q8_0 model from `parallama make-model`, shared by the tests of this binary.
const std::string& random_q8_model() {
  static TempDir dir;
  static std::string path;
  if (path.empty()) {
    path = dir.file("random_q8.gguf");
    CommandResult r = run_command(kBin + " make-model -o " + path +
                                  " --type q8_0 --n-embd 64 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 128 --seed 1");
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  return path;
}

// Prompts as token ids for a model with a synthetic vocab.
std::vector<json> id_prompts(int n, int n_vocab) {
  std::vector<json> ps;
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> p = {1};
    const int len = i == n - 1 ? 150 : 10 + 7 * i;
    for (int j = 0; j < len; ++j) p.push_back(3 + (i * 131 + j * 17) % (n_vocab - 3));
    ps.push_back(p);
  }
  return ps;
}

// Each prompt alone at --parallel 1, then all eight at once at --parallel 8
// with --batch-size 16 (the later four sent once the first has begun decoding):
// exactly the same tokens.
void check_batch_equivalence(const std::string& model, const std::vector<json>& prompts, int n_predict) {
  std::vector<Completion> alone;
  {
    auto r1 = RunnerProcess::start(model, {"--parallel", "1", "--ctx-size", "256"});
    for (const json& p : prompts) {
      alone.push_back(complete(r1->url(), greedy(p, n_predict)));
      ASSERT_EQ(alone.back().status, 200) << alone.back().final.dump();
      const std::string reason = alone.back().final.value("done_reason", "");
      ASSERT_TRUE(reason == "length" || reason == "stop") << alone.back().final.dump();
      ASSERT_FALSE(alone.back().tokens.empty());
    }
  }
  auto r8 = RunnerProcess::start(model,
                                 {"--parallel", "8", "--ctx-size", "2048", "--batch-size", "16"});
  // Request 0 streams; 1..3 follow at once (they arrive during its prefill), and
  // 4..7 once it has generated a token (they arrive mid-decode).
  auto send = [&](size_t i) {
    return std::async(std::launch::async, [&, i] { return complete(r8->url(), greedy(prompts[i], n_predict, i % 2 == 0)); });
  };
  std::vector<std::future<Completion>> futs;
  for (size_t i = 0; i < 4; ++i) futs.push_back(send(i));
  httplib::Client c = r8->client();
  // A small model can finish the first four between two polls; then the rest
  // simply arrive after them (still a valid check of batched = alone).
  auto first_done = [&] {
    for (size_t i = 0; i < futs.size(); ++i)
      if (futs[i].wait_for(0ms) == std::future_status::ready) return true;
    return false;
  };
  bool decoding = false;
  for (int k = 0; k < 30000 && !decoding && !first_done(); ++k) {
    for (const json& slot : get(c, "/slots").body) decoding |= slot.value("n_generated", 0) > 0;
    if (!decoding) std::this_thread::sleep_for(1ms);
  }
  EXPECT_TRUE(decoding || first_done());
  for (size_t i = 4; i < prompts.size(); ++i) futs.push_back(send(i));
  for (size_t i = 0; i < prompts.size(); ++i) {
    Completion c = futs[i].get();
    EXPECT_EQ(c.status, 200);
    EXPECT_EQ(c.tokens, alone[i].tokens) << "prompt " << i;
    EXPECT_EQ(c.content, alone[i].content) << "prompt " << i;
    EXPECT_EQ(c.final.value("done_reason", ""), alone[i].final.value("done_reason", "")) << c.final.dump();
  }
}

// Raw socket: send a request, read until `min_bytes` of the response arrived, then hang up.
void request_and_hang_up(int port, const std::string& body, size_t min_bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const std::string req = "POST /completion HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  std::string got;
  char buf[4096];
  while (got.size() < min_bytes) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_GE(got.size(), min_bytes) << got;
  ::close(fd);
}

// Polls /metrics until a series reaches `value` (bounded); returns the last metrics.
std::map<std::string, double> wait_metric(httplib::Client& c, const std::string& series, double value) {
  std::map<std::string, double> m;
  for (int i = 0; i < 500; ++i) {
    m = metrics(c);
    if (m[series] == value) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(m[series], value) << series;
  return m;
}

// Polls /metrics until the KV cache and the running set are empty (bounded).
void expect_idle(httplib::Client& c) {
  std::map<std::string, double> m;
  for (int i = 0; i < 500; ++i) {
    m = metrics(c);
    if (m["parallama_runner_kv_blocks_used"] == 0 && m["parallama_runner_requests_running"] == 0 &&
        m["parallama_runner_requests_waiting"] == 0)
      break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(m["parallama_runner_kv_blocks_used"], 0);
  EXPECT_EQ(m["parallama_runner_requests_running"], 0);
  EXPECT_EQ(m["parallama_runner_requests_waiting"], 0);
}

}  // namespace

TEST(RunnerHttp, GreedyStoriesStreamAndNonStream) {
  REQUIRE_STORIES();
  // The engine streams text that continues the prompt, so SPM's "▁Once" after
  // BOS keeps its space: the content is " Once upon a time..." (llama.cpp's
  // server does the same); a client that shows a whole story strips it.
  const std::string expected = " " + read_file(kTestdata / "models/stories260K.greedy200.expected.txt");
  std::vector<int32_t> expected_ids = read_ids(kTestdata / "models/stories260K.greedy200.ids.txt");
  expected_ids.erase(expected_ids.begin());  // BOS: the prompt
  auto r = RunnerProcess::start(kStories, {"--parallel", "2", "--ctx-size", "1024"});

  Completion plain = complete(r->url(), json{{"prompt", ""}, {"n_predict", 200}, {"temperature", 0}});
  EXPECT_EQ(plain.status, 200);
  EXPECT_EQ(plain.content, expected);
  EXPECT_EQ(plain.tokens, expected_ids);
  EXPECT_EQ(plain.final["stop"], true);
  EXPECT_EQ(plain.final["done_reason"], "length");
  const json& t = plain.final["timings"];
  EXPECT_EQ(t["prompt_n"], 1);
  EXPECT_EQ(t["predicted_n"], 200);
  for (const char* k : {"prompt_ms", "predicted_ms", "cached_n", "queue_ms"}) EXPECT_TRUE(t.contains(k)) << k;

  Completion streamed =
      complete(r->url(), json{{"prompt", ""}, {"n_predict", 200}, {"temperature", 0}, {"stream", true}});
  EXPECT_EQ(streamed.status, 200);
  EXPECT_EQ(streamed.content, expected);
  EXPECT_EQ(streamed.tokens, expected_ids);
  ASSERT_GE(streamed.chunks.size(), 2u);
  for (size_t i = 0; i + 1 < streamed.chunks.size(); ++i) EXPECT_EQ(streamed.chunks[i]["stop"], false);
  EXPECT_EQ(streamed.final["content"], "");
  EXPECT_EQ(streamed.final["stop"], true);
  EXPECT_EQ(streamed.final["done_reason"], "length");
  EXPECT_EQ(streamed.final["timings"]["predicted_n"], 200);
  EXPECT_EQ(streamed.chunks[0]["content"], " Once");

  // A stop string ends generation before it, with done_reason "stop".
  Completion stopped =
      complete(r->url(), json{{"prompt", ""}, {"n_predict", 200}, {"temperature", 0}, {"stop", {"Lily"}}});
  EXPECT_EQ(stopped.content, " Once upon a time, there was a little girl named ");
  EXPECT_EQ(stopped.final["done_reason"], "stop");

  // Prompt as ids, no BOS added to ids.
  Completion ids = complete(r->url(), json{{"prompt", {1}}, {"n_predict", 20}, {"temperature", 0}});
  EXPECT_EQ(ids.content, expected.substr(0, ids.content.size()));
  EXPECT_EQ(ids.tokens.size(), 20u);
}

TEST(RunnerHttp, BatchEquivalenceStories260K) {
  REQUIRE_STORIES();
  std::vector<json> prompts;
  for (const std::string& s : story_prompts()) prompts.push_back(s);
  check_batch_equivalence(kStories, prompts, 40);
}

TEST(RunnerHttp, BatchEquivalenceRandomQ8_0) {
  check_batch_equivalence(random_q8_model(), id_prompts(8, 512), 30);
}

TEST(RunnerHttp, SeededSamplingIndependentOfLoad) {
  REQUIRE_STORIES();
  const json seeded = {{"prompt", "Once upon a time"}, {"n_predict", 40}, {"temperature", 0.8}, {"seed", 42}};
  std::vector<int32_t> alone;
  {
    auto r = RunnerProcess::start(kStories, {"--parallel", "4", "--ctx-size", "2048"});
    alone = complete(r->url(), seeded).tokens;
    ASSERT_EQ(alone.size(), 40u);
  }
  auto r = RunnerProcess::start(kStories, {"--parallel", "4", "--ctx-size", "2048"});
  std::vector<std::future<Completion>> load;
  const auto prompts = story_prompts();
  for (int i = 0; i < 3; ++i) {
    json other = {{"prompt", prompts[i + 1]}, {"n_predict", 60}, {"temperature", 1.0}, {"seed", i}, {"stream", true}};
    load.push_back(std::async(std::launch::async, [&, other] { return complete(r->url(), other); }));
  }
  json s = seeded;
  s["stream"] = true;
  Completion under_load = complete(r->url(), s);
  for (auto& f : load) EXPECT_EQ(f.get().status, 200);
  EXPECT_EQ(under_load.tokens, alone);
  EXPECT_EQ(complete(r->url(), seeded).tokens, alone);  // and again, non-stream, on a warm runner
}

TEST(RunnerHttp, PrefixCacheReusesASharedPrefix) {
  REQUIRE_STORIES();
  std::string prefix;
  for (int i = 0; i < 4; ++i) prefix += "Lily and Ben went to the park. They saw a big tree and a little bird. ";
  const json first = greedy(prefix + "The bird sang.", 16);
  const json second = greedy(prefix + "Then Ben said", 24);
  Completion fresh;
  {
    auto r = RunnerProcess::start(kStories, {"--parallel", "2", "--ctx-size", "1024"});
    fresh = complete(r->url(), second);
    EXPECT_EQ(fresh.final["timings"]["cached_n"], 0);
  }
  auto r = RunnerProcess::start(kStories, {"--parallel", "2", "--ctx-size", "1024"});
  complete(r->url(), first);
  Completion cached = complete(r->url(), second);
  EXPECT_GT(cached.final["timings"]["cached_n"].get<int>(), 0) << cached.final.dump();
  EXPECT_EQ(cached.tokens, fresh.tokens);
  EXPECT_EQ(cached.content, fresh.content);
  httplib::Client c = r->client();
  auto m = metrics(c);
  EXPECT_GT(m["parallama_runner_prefix_cache_hit_tokens_total"], 0);
}

TEST(RunnerHttp, SetParallelShrinkAndGrowUnderLoad) {
  REQUIRE_STORIES();
  auto r = RunnerProcess::start(kStories, {"--parallel", "8", "--ctx-size", "8192"});
  httplib::Client c = r->client();
  const auto prompts = story_prompts();
  // Eight streaming requests released together, so all arrive before any finishes.
  auto send_all = [&](int n_predict) {
    std::promise<void> go;
    std::shared_future<void> released = go.get_future().share();
    std::vector<std::future<Completion>> futs;
    for (int i = 0; i < 8; ++i)
      futs.push_back(std::async(std::launch::async, [&, i, n_predict, released] {
        released.wait();
        return complete(r->url(), greedy(prompts[i % 7], n_predict, true));
      }));
    go.set_value();
    return futs;
  };
  auto poll_running = [&](auto until, std::chrono::milliseconds limit) {
    int max_running = 0;
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      auto m = metrics(c);
      const int running = static_cast<int>(m["parallama_runner_requests_running"]);
      max_running = std::max(max_running, running);
      if (until(running, m)) break;
      std::this_thread::sleep_for(2ms);
    }
    return max_running;
  };

  // Shrink from 8 to 2 while 8 run: none is lost, all finish normally.
  {
    auto futs = send_all(300);
    const int seen = poll_running([](int running, auto&) { return running == 8; }, 20s);
    EXPECT_EQ(seen, 8);
    auto p = post(c, "/parallel", json{{"n", 2}});
    EXPECT_EQ(p.status, 200);
    EXPECT_EQ(p.body["parallel"], 2);
    EXPECT_EQ(get(c, "/parallel").body["parallel"], 2);
    for (auto& f : futs) {
      Completion done = f.get();
      EXPECT_EQ(done.status, 200);
      const std::string reason = done.final.value("done_reason", "");
      EXPECT_TRUE(reason == "stop" || reason == "length") << done.final.dump();
      if (reason == "length") {
        EXPECT_EQ(done.tokens.size(), 300u);
      }
    }
  }
  // Now at 2: eight requests run two at a time; growing to 8 admits the waiting ones.
  {
    auto futs = send_all(600);  // a pair takes a few hundred ms, so most still wait when we grow
    const int before = poll_running([](int, auto& m) { return m["parallama_runner_requests_waiting"] >= 6; }, 10s);
    const int during = poll_running([](int, auto&) { return false; }, 100ms);
    EXPECT_LE(std::max(before, during), 2);
    EXPECT_EQ(post(c, "/parallel", json{{"n", 8}}).status, 200);
    const int after = poll_running([](int running, auto&) { return running > 2; }, 10s);
    EXPECT_GT(after, 2);
    for (auto& f : futs) {
      Completion done = f.get();
      const std::string reason = done.final.value("done_reason", "");
      EXPECT_TRUE(reason == "stop" || reason == "length") << done.final.dump();
    }
  }
  expect_idle(c);
}

TEST(RunnerHttp, ClientDisconnectCancels) {
  REQUIRE_STORIES();
  auto r = RunnerProcess::start(kStories, {"--parallel", "1", "--ctx-size", "4096"});
  httplib::Client c = r->client();
  // Streaming: hang up after the first chunks.
  const std::string cancelled = "parallama_runner_requests_finished_total{reason=\"cancelled\"}";
  request_and_hang_up(r->port(), greedy("Once upon a time", 4000, true).dump(), 300);
  wait_metric(c, cancelled, 1);
  expect_idle(c);
  // Non-streaming: hang up while it generates (the headers arrive first).
  request_and_hang_up(r->port(), greedy("Once upon a time", 4000, false).dump(), 20);
  wait_metric(c, cancelled, 2);
  expect_idle(c);
  // Waiting in the queue behind a running request, then the client goes.
  auto running = std::async(std::launch::async, [&] { return complete(r->url(), greedy("Once", 600, true)); });
  wait_metric(c, "parallama_runner_requests_running", 1);
  request_and_hang_up(r->port(), greedy("Once upon a time", 4000, false).dump(), 20);
  wait_metric(c, cancelled, 3);  // at --parallel 1 it could only have been waiting
  EXPECT_EQ(metrics(c)["parallama_runner_requests_waiting"], 0);
  EXPECT_EQ(running.get().tokens.size(), 600u);
  expect_idle(c);
  auto m = metrics(c);
  EXPECT_LT(m["parallama_runner_generated_tokens_total"], 4000);
  // The runner still serves.
  EXPECT_EQ(complete(r->url(), greedy("Once", 5)).tokens.size(), 5u);
}

TEST(RunnerHttp, MetricsParseAndCountersMove) {
  REQUIRE_STORIES();
  auto r = RunnerProcess::start(kStories, {"--parallel", "2", "--ctx-size", "1024"});
  httplib::Client c = r->client();
  auto before = metrics(c);
  for (const char* name :
       {"requests_running", "requests_waiting", "parallel", "kv_blocks_used", "kv_blocks_total", "kv_block_size",
        "kv_usage_ratio", "prefix_cache_queries_total", "prefix_cache_query_tokens_total",
        "prefix_cache_hit_tokens_total", "prompt_tokens_total", "generated_tokens_total", "steps_total",
        "step_seconds_total", "last_step_seconds", "preemptions_total"})
    EXPECT_TRUE(before.count(std::string("parallama_runner_") + name)) << name;
  EXPECT_EQ(before["parallama_runner_parallel"], 2);
  EXPECT_EQ(before["parallama_runner_kv_blocks_total"], 32);
  EXPECT_EQ(before["parallama_runner_kv_block_size"], 32);
  EXPECT_EQ(before["parallama_runner_requests_finished_total{reason=\"length\"}"], 0);

  Completion done = complete(r->url(), greedy("Once upon a time", 12));
  ASSERT_EQ(done.tokens.size(), 12u);
  std::map<std::string, double> after;
  // The snapshot is published after the step that finished the request.
  for (int i = 0; i < 200; ++i) {
    after = metrics(c);
    if (after["parallama_runner_requests_finished_total{reason=\"length\"}"] == 1) break;
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(after["parallama_runner_requests_finished_total{reason=\"length\"}"], 1);
  EXPECT_EQ(after["parallama_runner_generated_tokens_total"] - before["parallama_runner_generated_tokens_total"], 12);
  EXPECT_EQ(after["parallama_runner_prompt_tokens_total"] - before["parallama_runner_prompt_tokens_total"],
            done.final["timings"]["prompt_n"].get<double>());
  EXPECT_GE(after["parallama_runner_steps_total"] - before["parallama_runner_steps_total"], 12);
  EXPECT_GT(after["parallama_runner_step_seconds_total"], 0);
  EXPECT_EQ(after["parallama_runner_prefix_cache_queries_total"], 1);

  // /stats: the same snapshot as JSON.
  json st = get(c, "/stats").body;
  EXPECT_EQ(st["parallel"], 2);
  EXPECT_EQ(st["max_parallel"], 32);
  EXPECT_EQ(st["kv_blocks_total"], 32);
  EXPECT_EQ(st["kv_block_size"], 32);
  EXPECT_EQ(st["n_ctx"], 1024);
  EXPECT_EQ(st["generated_tokens"].get<double>(), after["parallama_runner_generated_tokens_total"]);
  EXPECT_EQ(st["finished"]["length"], 1);
}

TEST(RunnerHttp, BadRequestsGetJsonErrors) {
  REQUIRE_STORIES();
  auto r = RunnerProcess::start(kStories, {"--parallel", "2", "--ctx-size", "256"});
  httplib::Client c = r->client();
  auto expect_400 = [&](const std::string& path, const std::string& body, const std::string& words) {
    HttpResult res = post_raw(c, path, body);
    EXPECT_EQ(res.status, 400) << path << " " << body << " -> " << res.text;
    ASSERT_TRUE(res.body.is_object() && res.body.contains("error")) << res.text;
    EXPECT_NE(res.body["error"].get<std::string>().find(words), std::string::npos)
        << body << " -> " << res.body["error"];
  };
  expect_400("/completion", "{\"prompt\": \"x\"", "invalid JSON");
  expect_400("/completion", "[1, 2]", "JSON object");
  expect_400("/completion", "{}", "missing field 'prompt'");
  expect_400("/completion", R"({"prompt": 42})", "field 'prompt'");
  expect_400("/completion", R"({"prompt": "x", "temperature": "hot"})", "'temperature' must be a number");
  expect_400("/completion", R"({"prompt": "x", "top_k": 1.5})", "'top_k' must be an integer");
  expect_400("/completion", R"({"prompt": "x", "stream": "yes"})", "'stream' must be a boolean");
  expect_400("/completion", R"({"prompt": "x", "stop": [1]})", "'stop'[0] must be a string");
  expect_400("/completion", R"({"prompt": "", "add_special": false})", "empty");
  expect_400("/completion", R"({"prompt": []})", "empty");
  std::string long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt += "Once upon a time ";
  expect_400("/completion", json{{"prompt", long_prompt}}.dump(), "more than the context allows");
  expect_400("/completion", R"({"prompt": [1, 100000]})", "outside the vocabulary");
  expect_400("/completion", R"({"prompt": [1, -3]})", "outside the vocabulary");
  expect_400("/completion", R"({"prompt": "x", "top_p": 2})", "top_p");
  expect_400("/completion", R"({"prompt": "x", "temperature": -1})", "temperature");
  expect_400("/completion", R"({"prompt": "x", "n_predict": -5})", "n_predict");
  expect_400("/completion", R"({"prompt": "x", "stream": true, "top_k": "a"})", "top_k");
  expect_400("/tokenize", R"({"content": 1})", "'content' must be a string");
  expect_400("/detokenize", R"({"tokens": [1, 99999]})", "out");
  expect_400("/detokenize", R"({"tokens": "abc"})", "'tokens' must be an array");
  expect_400("/embedding", R"({"content": 3})", "'content' must be a string or an array");
  expect_400("/parallel", R"({"n": 0})", "at least 1");
  expect_400("/parallel", R"({"n": 9})", "more than the KV cache can run");  // 256 / 32 = 8 blocks
  expect_400("/parallel", R"({"n": "two"})", "'n' must be an integer");
  expect_400("/parallel", R"({})", "missing field 'n'");

  HttpResult nf = get(c, "/no/such/path");
  EXPECT_EQ(nf.status, 404);
  EXPECT_TRUE(nf.body.contains("error")) << nf.text;
  HttpResult bad_method = get(c, "/completion");
  EXPECT_EQ(bad_method.status, 405);
  EXPECT_TRUE(bad_method.body.contains("error")) << bad_method.text;
  EXPECT_EQ(post(c, "/health", json::object()).status, 405);
  // Still healthy, and the valid neighbour of each bad request works.
  EXPECT_EQ(get(c, "/health").status, 200);
  EXPECT_EQ(post(c, "/parallel", json{{"n", 8}}).status, 200);
  EXPECT_EQ(complete(r->url(), greedy("Once", 3)).tokens.size(), 3u);
}

TEST(RunnerHttp, TokenizeDetokenizeEmbeddingSlots) {
  REQUIRE_STORIES();
  auto r = RunnerProcess::start(kStories, {"--parallel", "2", "--ctx-size", "1024"});
  httplib::Client c = r->client();
  auto tok = post(c, "/tokenize", json{{"content", "Once upon a time"}});
  ASSERT_EQ(tok.status, 200);
  auto ids = tok.body["tokens"].get<std::vector<int>>();
  ASSERT_FALSE(ids.empty());
  EXPECT_NE(ids[0], 1);  // no BOS by default
  auto with_bos = post(c, "/tokenize", json{{"content", "Once upon a time"}, {"add_special", true}});
  EXPECT_EQ(with_bos.body["tokens"][0], 1);
  auto detok = post(c, "/detokenize", json{{"tokens", ids}});
  EXPECT_EQ(detok.body["content"], "Once upon a time");

  auto emb = post(c, "/embedding", json{{"content", "Once upon a time"}});
  ASSERT_EQ(emb.status, 200) << emb.text;
  EXPECT_EQ(emb.body["embedding"].size(), 64u);
  auto embs = post(c, "/embedding", json{{"input", {"Once upon a time", "The cat"}}});
  ASSERT_EQ(embs.status, 200) << embs.text;
  ASSERT_EQ(embs.body["embeddings"].size(), 2u);
  // Not bit-identical: alone the prompt's 5 rows and batched with the other
  // prompt's rows take different float GEMM paths (summation order), so ~1e-6.
  auto single = emb.body["embedding"].get<std::vector<float>>();
  auto first = embs.body["embeddings"][0].get<std::vector<float>>();
  auto second = embs.body["embeddings"][1].get<std::vector<float>>();
  ASSERT_EQ(first.size(), single.size());
  float max_diff_second = 0;
  for (size_t d = 0; d < single.size(); ++d) {
    EXPECT_NEAR(first[d], single[d], 1e-4f * (1 + std::fabs(single[d]))) << d;
    max_diff_second = std::max(max_diff_second, std::fabs(second[d] - single[d]));
  }
  EXPECT_GT(max_diff_second, 1e-2f);

  // /slots shows a running request.
  auto fut = std::async(std::launch::async, [&] { return complete(r->url(), greedy("Once", 400, true)); });
  json slot;
  for (int i = 0; i < 2000 && slot.is_null(); ++i) {
    auto s = get(c, "/slots");
    if (!s.body.empty()) slot = s.body[0];
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_FALSE(slot.is_null());
  for (const char* k : {"id", "state", "n_prompt", "n_computed", "n_generated", "age_ms"})
    EXPECT_TRUE(slot.contains(k)) << k;
  EXPECT_EQ(fut.get().tokens.size(), 400u);
  // The snapshot is published just after the step that sent the last token.
  size_t n_slots = 1;
  for (int i = 0; i < 500 && n_slots != 0; ++i) {
    n_slots = get(c, "/slots").body.size();
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_EQ(n_slots, 0u);
}

TEST(RunnerHttp, HealthWhileLoadingABiggerModel) {
  TempDir dir;
  const std::string big = dir.file("big.gguf");
  CommandResult made = run_command(kBin + " make-model -o " + big +
                                   " --type q8_0 --n-embd 1024 --n-layer 8 --n-head 16 --n-ff 2816");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto r = RunnerProcess::spawn(big, {"--ctx-size", "1024", "--threads", "1"});
  httplib::Client c = r->client();
  c.set_connection_timeout(0, 100000);
  int n_503 = 0, n_200 = 0;
  const auto deadline = Clock::now() + 30s;
  while (Clock::now() < deadline && n_200 == 0) {
    HttpResult h = get(c, "/health");
    if (h.status == 503) {
      ++n_503;
      EXPECT_EQ(h.body, json({{"status", "loading model"}}));
      const int st = post(c, "/completion", greedy("x", 1)).status;  // the load may finish in between
      EXPECT_TRUE(st == 503 || st == 200) << st;
    } else if (h.status == 200) {
      ++n_200;
      EXPECT_EQ(h.body, json({{"status", "ok"}}));
    } else {
      EXPECT_EQ(h.status, 0) << h.text;  // not listening yet
    }
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(n_200, 1) << r->log();
  // The listener starts before the model loads, so the loading window is visible.
  EXPECT_GT(n_503, 0) << r->log();
  EXPECT_EQ(r->terminate(), 0);
}

TEST(RunnerHttp, LoadFailureExitsNonZero) {
  auto r = RunnerProcess::spawn("/nonexistent/model.gguf", {"--ctx-size", "256"});
  r->allow_failure_exit();
  httplib::Client c = r->client();
  c.set_connection_timeout(0, 100000);
  HttpResult failed;
  for (int i = 0; i < 3000 && failed.status != 500 && !r->wait_exit(0ms); ++i) {
    failed = get(c, "/health");
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(failed.status, 500) << r->log();
  EXPECT_NE(failed.body.value("error", "").find("nonexistent"), std::string::npos) << failed.text;
  auto code = r->wait_exit(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  EXPECT_NE(r->log().find("error loading model"), std::string::npos) << r->log();
}

TEST(RunnerHttp, BadSettingsFailAtOnce) {
  CommandResult r = run_command(kBin + " runner --model " + kStories + " --ctx-size 64 --parallel 4 --port 0");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("more than the KV cache can run"), std::string::npos) << r.err;
}

TEST(RunnerHttp, SigtermWithAnOpenStreamExitsCleanly) {
  REQUIRE_STORIES();
  auto r = RunnerProcess::start(kStories, {"--parallel", "2", "--ctx-size", "8192"});
  std::promise<void> started;
  auto fut = std::async(std::launch::async, [&] {
    httplib::Client c = r->client();
    httplib::Request req;
    req.method = "POST";
    req.path = "/completion";
    req.body = greedy("Once upon a time", 4000, true).dump();
    bool signalled = false;
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      if (!signalled) started.set_value();
      signalled = true;
      return true;
    };
    httplib::Response res;
    httplib::Error err;
    c.send(req, res, err);
  });
  ASSERT_EQ(started.get_future().wait_for(30s), std::future_status::ready);
  const auto t0 = Clock::now();
  EXPECT_EQ(r->terminate(), 0) << r->log();
  EXPECT_LT(Clock::now() - t0, 5s);
  fut.get();
  EXPECT_NE(r->log().find("received SIGTERM"), std::string::npos);
}
