// RunnerServer in-process, with loader hooks that make loading slow or fail,
// so the /health states are observed deterministically.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "core/error.h"
#include "model/model.h"
#include "model/random_model.h"
#include "model_fixture.h"
#include "runner/runner_server.h"
#include "runner_harness.h"
#include "tokenizer/tokenizer.h"

using namespace pl;
using namespace pl::test;
using namespace std::chrono_literals;

namespace {

std::string write_small_model(const TempDir& dir) {
  const std::string path = dir.file("m.gguf");
  write_random_model(small_model_spec(), path, 2);
  return path;
}

runner::RunnerOptions options(const std::string& path) {
  runner::RunnerOptions o;
  o.model_path = path;
  o.port = 0;
  o.engine.n_ctx = 512;
  o.engine.n_parallel = 2;
  o.engine.n_threads = 1;
  o.failed_exit_delay_ms = 300;
  return o;
}

}  // namespace

TEST(RunnerServer, HealthIsLoadingThenOk) {
  TempDir dir;
  const std::string path = write_small_model(dir);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  runner::RunnerServer server(options(path), [released](const std::string& p) {
    released.wait();
    return runner::load_model_file(p);
  });
  server.start();
  ASSERT_GT(server.port(), 0);
  httplib::Client c("127.0.0.1", server.port());

  HttpResult h = get(c, "/health");
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(h.body, json({{"status", "loading model"}}));
  EXPECT_EQ(server.state(), runner::RunnerState::Loading);
  // Everything that needs the model says so; unknown paths are still 404.
  for (const char* path : {"/completion", "/tokenize", "/embedding", "/parallel"}) {
    HttpResult r = post(c, path, json{{"prompt", "x"}});
    EXPECT_EQ(r.status, 503) << path;
    EXPECT_EQ(r.body.value("error", ""), "loading model") << path;
  }
  EXPECT_EQ(get(c, "/metrics").status, 503);
  EXPECT_EQ(get(c, "/nope").status, 404);

  release.set_value();
  for (int i = 0; i < 5000 && h.status != 200; ++i) {
    h = get(c, "/health");
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, json({{"status", "ok"}}));
  EXPECT_EQ(server.state(), runner::RunnerState::Ready);
  EXPECT_EQ(post(c, "/tokenize", json{{"content", "x"}}).status, 200);
  EXPECT_FALSE(server.finished());
  server.stop();
  EXPECT_TRUE(server.finished());
  EXPECT_EQ(server.wait(), 0);
}

TEST(RunnerServer, LoadFailureAnswers500ThenWaitReturns1) {
  runner::RunnerServer server(options("whatever.gguf"),
                              [](const std::string&) -> runner::LoadedModel { fail("no such model: whatever.gguf"); });
  server.start();
  httplib::Client c("127.0.0.1", server.port());
  HttpResult h;
  for (int i = 0; i < 2000 && h.status != 500; ++i) {
    h = get(c, "/health");
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(h.status, 500);
  EXPECT_EQ(h.body.value("status", ""), "error");
  EXPECT_NE(h.body.value("error", "").find("no such model: whatever.gguf"), std::string::npos) << h.text;
  HttpResult r = post(c, "/completion", json{{"prompt", "x"}});
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(server.load_error(), "no such model: whatever.gguf");
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(server.wait(), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_TRUE(server.finished());
}

TEST(RunnerServer, EngineSettingsAreCheckedBeforeListening) {
  runner::RunnerOptions o = options("m.gguf");
  o.engine.n_parallel = 17;  // 512 / 32 = 16 blocks
  runner::RunnerServer a(o);
  EXPECT_THROW(a.start(), Error);
  o = options("m.gguf");
  o.engine.n_batch = 0;
  runner::RunnerServer b(o);
  EXPECT_THROW(b.start(), Error);
}

TEST(RunnerServer, PortInUseIsAnError) {
  TempDir dir;
  const std::string path = write_small_model(dir);
  runner::RunnerServer first(options(path));
  first.start();
  runner::RunnerOptions o = options(path);
  o.port = first.port();
  runner::RunnerServer second(o);
  EXPECT_THROW(second.start(), Error);
}

TEST(RunnerServer, StopWithOpenStreamsAndQueuedRequests) {
  TempDir dir;
  const std::string path = write_small_model(dir);
  runner::RunnerOptions o = options(path);
  o.engine.n_parallel = 1;
  o.engine.n_ctx = 4096;  // greedy from [1, 5], this model runs thousands of tokens without an end token
  auto server = std::make_unique<runner::RunnerServer>(o);
  server->start();
  httplib::Client c("127.0.0.1", server->port());
  for (int i = 0; i < 2000 && get(c, "/health").status != 200; ++i) std::this_thread::sleep_for(1ms);
  const std::string url = "http://127.0.0.1:" + std::to_string(server->port());
  std::vector<std::future<Completion>> futs;
  for (int i = 0; i < 3; ++i)
    futs.push_back(std::async(std::launch::async, [&, i] {
      return complete(url, json{{"prompt", {1, 5}}, {"n_predict", 100000}, {"temperature", 0}, {"stream", i != 1}});
    }));
  size_t n_slots = 0;  // one running, two waiting
  for (int i = 0; i < 2000 && n_slots != 3; ++i) {
    n_slots = get(c, "/slots").body.size();
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(n_slots, 3u);
  server->stop();
  EXPECT_EQ(server->wait(), 0);
  server.reset();
  for (auto& f : futs) {
    Completion r = f.get();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.final.value("error", ""), "the runner is shutting down") << r.final.dump();
  }
}

TEST(RunnerServer, ListenBacklogIsWide) {
  // httplib's own listen backlog is 5: a burst of clients (all slots of a
  // parallel runner connecting at once) would overflow it when the accept
  // thread is slow to run, and the extra clients wait a second for a SYN retry.
  TempDir dir;
  runner::RunnerServer server(options(write_small_model(dir)));
  server.start();
  CommandResult r = run_command("ss -Hltn 'sport = :" + std::to_string(server.port()) + "'");
  if (r.exit_code != 0 || r.out.empty()) GTEST_SKIP() << "ss (iproute2) is not available: " << r.err;
  std::istringstream in(r.out);
  std::string state;
  long recv_q = -1, backlog = -1;
  in >> state >> recv_q >> backlog;  // for a listener, Send-Q is the backlog
  EXPECT_EQ(state, "LISTEN") << r.out;
  EXPECT_GE(backlog, 128) << r.out;
}
