// Loading, leasing, keep-alive, crashes and the queue bound, against real runners.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <future>

#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "model/config.h"
#include "sched/process.h"
#include "sched_fixture.h"

namespace pl::sched::test {
namespace {

using pl::test::error_of;
using pl::test::run_command;

TEST_F(SchedTest, LoadLeaseReuseAndTheStartLine) {
  Scheduler s(config());
  ModelRequest req = request("small:latest");
  req.num_parallel = 2;
  auto lease = s.acquire(req);
  ASSERT_GT(lease->port(), 0);
  EXPECT_EQ(lease->key(), "small:latest");
  EXPECT_EQ(lease->num_ctx(), 256);
  EXPECT_EQ(lease->num_parallel(), 2);
  EXPECT_GT(lease->load_ms(), 0);
  EXPECT_TRUE(healthy(lease->port()));
  EXPECT_EQ(lease->runner_exit_reason(), "");

  const std::string expected = "starting llama server cmd=\"" + kBin + " runner --model " + model_ +
                               " --ctx-size 512 --batch-size 512 --threads 1 --parallel 2 --port " +
                               std::to_string(lease->port()) + "\"";
  EXPECT_EQ(log_line("starting llama server"), expected) << log_text();
  EXPECT_NE(log_line("the model's num_parallel"), "") << log_text();

  auto info = find(s, "small:latest");
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->ready);
  EXPECT_EQ(info->parallel_source, "modelfile");
  EXPECT_EQ(info->num_parallel, 2);
  EXPECT_EQ(info->num_ctx, 256);
  EXPECT_EQ(info->in_flight, 1);
  EXPECT_EQ(info->running, 1);
  EXPECT_EQ(info->queued, 0);
  EXPECT_GT(info->weights_bytes, 0u);
  EXPECT_GT(info->size_bytes, info->weights_bytes);
  EXPECT_FALSE(info->expires_at);  // in use
  const int pid = info->pid;

  // A second request reuses the runner without a load.
  auto again = s.acquire(request("small:latest"));
  EXPECT_EQ(again->port(), lease->port());
  EXPECT_EQ(again->load_ms(), 0);
  EXPECT_EQ(find(s, "small:latest")->in_flight, 2);
  lease.reset();
  again.reset();
  info = find(s, "small:latest");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->pid, pid);
  EXPECT_EQ(info->in_flight, 0);
  ASSERT_TRUE(info->expires_at);  // the 5m keep-alive runs
  EXPECT_GT(*info->expires_at, std::chrono::system_clock::now() + 4min);
}

TEST_F(SchedTest, ParallelFromTheEnvironment) {
  SchedConfig c = config();
  c.num_parallel = 3;
  Scheduler s(c);
  auto lease = s.acquire(request("m"));
  EXPECT_EQ(lease->num_parallel(), 3);
  EXPECT_EQ(find(s, "m")->parallel_source, "env");
  EXPECT_NE(log_line("--ctx-size 768 --batch-size 512 --threads 1 --parallel 3 --port"), "") << log_text();
}

TEST_F(SchedTest, MemoryAwareDefaultPicksFourWhenItFits) {
  Scheduler s(config());
  auto lease = s.acquire(request("m"));
  EXPECT_EQ(lease->num_parallel(), 4);
  EXPECT_EQ(find(s, "m")->parallel_source, "default");
  const std::string line = log_line("memory-aware default");
  EXPECT_NE(line.find("fits in"), std::string::npos) << line;
  EXPECT_NE(line.find("parallel 4"), std::string::npos) << line;
  EXPECT_NE(line.find("available 16.0 GiB"), std::string::npos) << line;
  EXPECT_NE(log_line("--parallel 4 --port"), "") << log_text();
}

TEST_F(SchedTest, MemoryAwareDefaultFallsToOneWhenFourDoNotFit) {
  const ModelInfo m = read_model_info(model_, 512);
  const uint64_t four = m.weights_bytes + m.kv_bytes_per_token * 256 * 4 + m.compute_bytes;
  SchedConfig c = config();
  c.available_memory = [four] { return four - 1; };
  Scheduler s(c);
  auto lease = s.acquire(request("m"));
  EXPECT_EQ(lease->num_parallel(), 1);
  EXPECT_EQ(find(s, "m")->parallel_source, "default");
  const std::string line = log_line("memory-aware default");
  EXPECT_NE(line.find("exceeds"), std::string::npos) << line;
  EXPECT_NE(line.find("parallel 1"), std::string::npos) << line;
  EXPECT_NE(log_line("--ctx-size 256 --batch-size 512 --threads 1 --parallel 1 --port"), "") << log_text();
}

TEST_F(SchedTest, ArchitectureThatCannotBatchIsForcedToOne) {
  const std::string path = dir_.file("serial.gguf");
  const auto made = run_command(kBin + " make-model --no-parallel --n-embd 64 --n-layer 1 --n-head 4 --n-ff 128 "
                                       "--name serial-model -t 1 -o " + path);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_FALSE(supports_parallel(GgufFile::open(path)));
  EXPECT_TRUE(supports_parallel(GgufFile::open(model_)));

  SchedConfig c = config();
  c.num_parallel = 4;
  Scheduler s(c);
  ModelRequest req = request("serial");
  req.gguf = path;
  req.num_parallel = 4;
  auto lease = s.acquire(req);
  EXPECT_EQ(lease->num_parallel(), 1);
  EXPECT_EQ(find(s, "serial")->parallel_source, "forced-1");
  const std::string line = log_line("model architecture does not currently support parallel requests");
  EXPECT_NE(line.find("llama"), std::string::npos) << line;
  EXPECT_NE(line.find("serial-model"), std::string::npos) << line;
  EXPECT_NE(log_line("--parallel 1 --port"), "") << log_text();
}

TEST_F(SchedTest, KeepAliveExpiryStopsTheRunner) {
  Scheduler s(config());
  ModelRequest req = request("m");
  req.keep_alive = 300ms;
  auto lease = s.acquire(req);
  const int pid = find(s, "m")->pid;
  std::this_thread::sleep_for(400ms);  // in use: the timer does not run
  ASSERT_TRUE(find(s, "m"));
  lease.reset();
  ASSERT_TRUE(find(s, "m"));
  EXPECT_TRUE(find(s, "m")->expires_at);
  EXPECT_TRUE(eventually([&] { return !find(s, "m"); }, 3s));
  EXPECT_TRUE(eventually([&] { return pid_gone(pid); }, 3s));
  EXPECT_NE(log_line("keep_alive expired"), "") << log_text();
}

TEST_F(SchedTest, KeepAliveZeroStopsWhenIdleAndNegativeNever) {
  Scheduler s(config());
  ModelRequest req = request("m");
  req.keep_alive = Millis(-1);
  auto lease = s.acquire(req);
  lease.reset();
  auto info = find(s, "m");
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->expires_at);  // forever

  req.keep_alive = 0ms;
  lease = s.acquire(req);
  auto second = s.acquire(req);
  lease.reset();
  EXPECT_TRUE(find(s, "m"));  // still in use
  second.reset();
  EXPECT_FALSE(find(s, "m"));
  EXPECT_TRUE(eventually([&] { return pid_gone(info->pid); }, 3s));
}

TEST_F(SchedTest, Unload) {
  Scheduler s(config());
  EXPECT_FALSE(s.unload("nothing"));
  auto lease = s.acquire(request("m"));
  const int pid = find(s, "m")->pid;
  EXPECT_TRUE(s.unload("m"));
  EXPECT_TRUE(find(s, "m"));  // busy: it goes when the lease does
  lease.reset();
  EXPECT_FALSE(find(s, "m"));
  EXPECT_TRUE(eventually([&] { return pid_gone(pid); }, 3s));

  lease = s.acquire(request("m"));
  const int pid2 = find(s, "m")->pid;
  EXPECT_NE(pid2, pid);
  lease.reset();
  EXPECT_TRUE(s.unload("m"));  // idle: now
  EXPECT_FALSE(find(s, "m"));
  EXPECT_TRUE(eventually([&] { return pid_gone(pid2); }, 3s));
}

TEST_F(SchedTest, KilledRunnerIsNoticedAndReplaced) {
  Scheduler s(config());
  auto lease = s.acquire(request("m"));
  const int pid = find(s, "m")->pid;
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  EXPECT_EQ(lease->runner_exit_reason(), "llama runner process has terminated: signal 9 (Killed)");
  EXPECT_FALSE(find(s, "m"));
  EXPECT_TRUE(pid_gone(pid));
  EXPECT_NE(log_line("signal 9 (Killed)"), "") << log_text();
  lease.reset();  // harmless on a dead runner

  auto fresh = s.acquire(request("m"));
  EXPECT_GT(fresh->load_ms(), 0);
  EXPECT_NE(find(s, "m")->pid, pid);
  EXPECT_TRUE(healthy(fresh->port()));
}

TEST_F(SchedTest, MaxQueueCountsRequestsBeyondParallel) {
  SchedConfig c = config();
  c.num_parallel = 1;
  c.max_queue = 1;
  Scheduler s(c);
  auto running = s.acquire(request("m"));
  auto queued = s.acquire(request("m"));
  auto info = find(s, "m");
  EXPECT_EQ(info->running, 1);
  EXPECT_EQ(info->queued, 1);
  try {
    s.acquire(request("m"));
    ADD_FAILURE() << "expected BusyError";
  } catch (const BusyError& e) {
    EXPECT_STREQ(e.what(), "server busy, please try again.  maximum pending requests exceeded");
  }
  queued.reset();
  EXPECT_NO_THROW(queued = s.acquire(request("m")));
}

TEST_F(SchedTest, SmallerContextReusesLargerReloadsWhenIdle) {
  SchedConfig c = config();
  c.num_parallel = 1;
  Scheduler s(c);
  auto first = s.acquire(request("m", 256));
  const int pid = find(s, "m")->pid;
  auto smaller = s.acquire(request("m", 128));
  EXPECT_EQ(smaller->num_ctx(), 256);
  EXPECT_EQ(find(s, "m")->pid, pid);

  auto larger = std::async(std::launch::async, [&] { return s.acquire(request("m", 512)); });
  EXPECT_EQ(larger.wait_for(300ms), std::future_status::timeout);  // waits for the two leases to go
  // New requests queue behind the reload rather than slipping onto the old runner.
  auto behind = std::async(std::launch::async, [&] { return s.acquire(request("m", 128)); });
  EXPECT_EQ(behind.wait_for(100ms), std::future_status::timeout);
  first.reset();
  smaller.reset();
  auto big = larger.get();
  EXPECT_EQ(big->num_ctx(), 512);
  EXPECT_EQ(behind.get()->num_ctx(), 512);
  EXPECT_NE(find(s, "m")->pid, pid);
  EXPECT_TRUE(pid_gone(pid) || eventually([&] { return pid_gone(pid); }, 3s));
  EXPECT_NE(log_line("--ctx-size 512 "), "") << log_text();

  // Beyond the model's trained context (2048): clamped, and said so.
  big.reset();
  auto huge = s.acquire(request("m", 100000));
  EXPECT_EQ(huge->num_ctx(), 2048);
  EXPECT_NE(log_line("more than the model's context length: using 2048"), "") << log_text();
}

TEST_F(SchedTest, ConcurrentFirstRequestsShareOneLoad) {
  Scheduler s(config());
  std::vector<std::future<std::unique_ptr<Lease>>> f;
  for (int i = 0; i < 4; ++i) f.push_back(std::async(std::launch::async, [&] { return s.acquire(request("m")); }));
  std::vector<std::unique_ptr<Lease>> leases;
  for (auto& x : f) leases.push_back(x.get());
  for (const auto& l : leases) EXPECT_EQ(l->port(), leases[0]->port());
  int n_starts = 0;
  for (const std::string& l : log()) n_starts += l.find("starting llama server") != std::string::npos;
  EXPECT_EQ(n_starts, 1) << log_text();
  EXPECT_EQ(find(s, "m")->in_flight, 4);
}

TEST_F(SchedTest, NotAModelFailsClearly) {
  const std::string junk = dir_.file("junk.gguf");
  std::ofstream(junk) << "this is not a GGUF file";
  Scheduler s(config());
  ModelRequest req = request("junk");
  req.gguf = junk;
  const std::string msg = error_of([&] { s.acquire(req); });
  EXPECT_NE(msg.find("cannot read model"), std::string::npos) << msg;
  EXPECT_NE(msg.find(junk), std::string::npos) << msg;
  EXPECT_TRUE(s.ps().empty());
}

TEST_F(SchedTest, RunnerLoadFailureReportsTheRunnersReason) {
  // Metadata the scheduler accepts, but no tensors: the runner's load fails.
  const std::string broken = dir_.file("no_tensors.gguf");
  {
    const GgufFile f = GgufFile::open(model_);
    GgufWriter w;
    for (const GgufKV& kv : f.metadata()) w.set(kv.key, kv.value);
    w.write(broken);
  }
  Scheduler s(config());
  ModelRequest req = request("broken");
  req.gguf = broken;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string msg = error_of([&] { s.acquire(req); });
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_NE(msg.find("llama runner failed to load broken"), std::string::npos) << msg;
  EXPECT_NE(msg.find("token_embd"), std::string::npos) << msg;  // the runner's own words
  EXPECT_TRUE(s.ps().empty());
}

TEST_F(SchedTest, RequestsWaitingOnAFailedLoadGetItsError) {
  SchedConfig c = config();
  c.runner_exe = "/bin/sleep";  // `sleep runner ...` exits 1 at once, after the requests queued on it
  Scheduler s(c);
  std::vector<std::future<std::string>> f;
  for (int i = 0; i < 3; ++i)
    f.push_back(std::async(std::launch::async, [&] { return error_of([&] { s.acquire(request("m")); }); }));
  for (auto& x : f) EXPECT_NE(x.get().find("llama runner process has terminated: exit status 1"), std::string::npos);
  EXPECT_TRUE(s.ps().empty());
}

TEST_F(SchedTest, RunnerThatExitsAtOnceReportsItsExitStatus) {
  SchedConfig c = config();
  c.runner_exe = "/bin/false";
  Scheduler s(c);
  const std::string msg = error_of([&] { s.acquire(request("m")); });
  EXPECT_NE(msg.find("llama runner process has terminated: exit status 1"), std::string::npos) << msg;
  EXPECT_TRUE(s.ps().empty());
}

TEST_F(SchedTest, RunnerThatFailsAtStartReportsItsLastErrorLine) {
  // 4 sequences of 8 tokens: a KV pool of one block, which the runner refuses.
  Scheduler s(config());
  ModelRequest req = request("tiny", 8);
  req.num_parallel = 4;
  const std::string msg = error_of([&] { s.acquire(req); });
  EXPECT_EQ(msg.rfind("llama runner process has terminated: --parallel 4 is more than the KV cache can run", 0), 0u)
      << msg;
  EXPECT_EQ(msg.find("exit status"), std::string::npos) << msg;
  // The server's log keeps the exit status next to the reason.
  EXPECT_NE(log_line("exit status 1, 0 request(s) in flight"), "") << log_text();
  EXPECT_TRUE(s.ps().empty());
}

TEST_F(SchedTest, ExitReasonIsTheLastErrorLineTheRunnerWrote) {
  // A stand-in runner: noise, two error lines, a line without its end, then exit 3.
  const std::string script = dir_.file("runner.sh");
  {
    std::ofstream f(script);
    f << "#!/bin/sh\necho 'loading' >&2\necho 'Error: first' >&2\necho 'Error: the real reason' >&2\n"
         "printf 'no line end' >&2\nexit 3\n";
  }
  ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
  SchedConfig c = config();
  c.runner_exe = script;
  Scheduler s(c);
  EXPECT_EQ(error_of([&] { s.acquire(request("m")); }), "llama runner process has terminated: the real reason");
  // Without an error line the exit status is the reason, as before.
  c.runner_exe = "/bin/false";
  Scheduler quiet(c);
  EXPECT_EQ(error_of([&] { quiet.acquire(request("m")); }), "llama runner process has terminated: exit status 1");

  EXPECT_EQ(runner_error_of_line("Error: why\n"), "why");
  EXPECT_EQ(runner_error_of_line("parallama: internal check failed: x at a.cpp:1\n"),
            "internal check failed: x at a.cpp:1");
  EXPECT_EQ(runner_error_of_line("2026-01-01T00:00:00.000Z runner: listening on http://127.0.0.1:1\n"), "");
}

TEST_F(SchedTest, DestructorStopsEveryRunner) {
  std::unique_ptr<Lease> kept;
  int pid_busy = 0, pid_idle = 0;
  {
    Scheduler s(config());
    kept = s.acquire(request("busy"));
    s.acquire(request("idle"));
    pid_busy = find(s, "busy")->pid;
    pid_idle = find(s, "idle")->pid;
  }
  EXPECT_TRUE(pid_gone(pid_busy));
  EXPECT_TRUE(pid_gone(pid_idle));
  EXPECT_EQ(kept->runner_exit_reason(), "the scheduler has stopped");
  kept.reset();  // a lease that outlives its scheduler is harmless
}

}  // namespace
}  // namespace pl::sched::test
