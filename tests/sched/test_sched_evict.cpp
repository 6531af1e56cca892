// Eviction: OLLAMA_MAX_LOADED_MODELS and the memory budget, least recently used first.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <future>

#include "sched_fixture.h"

namespace pl::sched::test {
namespace {

using pl::test::error_of;

TEST_F(SchedTest, MaxLoadedModelsEvictsTheLeastRecentlyUsedIdleRunner) {
  SchedConfig c = config();
  c.max_loaded_models = 2;
  c.num_parallel = 1;
  Scheduler s(c);
  s.acquire(request("a"));
  s.acquire(request("b"));
  s.acquire(request("a"));  // a is now the more recently used
  const int pid_b = find(s, "b")->pid;
  const int pid_a = find(s, "a")->pid;
  auto lease_c = s.acquire(request("c"));
  EXPECT_FALSE(find(s, "b"));
  EXPECT_TRUE(find(s, "a"));
  EXPECT_TRUE(find(s, "c"));
  EXPECT_TRUE(pid_gone(pid_b));  // its memory is free before c loads
  EXPECT_NE(log_line("evicted to make room for c"), "") << log_text();
  EXPECT_EQ(find(s, "a")->pid, pid_a);

  // Everything busy: a fourth model waits for a runner to become idle.
  auto lease_a = s.acquire(request("a"));
  auto d = std::async(std::launch::async, [&] { return s.acquire(request("d")); });
  EXPECT_EQ(d.wait_for(300ms), std::future_status::timeout);
  lease_a.reset();
  auto lease_d = d.get();
  EXPECT_FALSE(find(s, "a"));
  EXPECT_TRUE(find(s, "c"));
  EXPECT_TRUE(find(s, "d"));
}

TEST_F(SchedTest, MemoryBudgetEvictsIdleRunners) {
  const ModelInfo m = read_model_info(model_, 512);
  const uint64_t one = runner_size_bytes(m, 256, 1);
  SchedConfig c = config();
  c.num_parallel = 1;
  c.available_memory = [one] { return one + one / 2; };  // room for one runner, not two
  c.load_timeout = 2s;
  Scheduler s(c);
  auto lease_a = s.acquire(request("a"));
  EXPECT_EQ(find(s, "a")->size_bytes, one);
  const int pid_a = find(s, "a")->pid;

  // a is busy: b cannot evict it and gives up after the load timeout.
  const auto t0 = std::chrono::steady_clock::now();
  const std::string msg = error_of([&] { s.acquire(request("b")); });
  EXPECT_NE(msg.find("timed out after 2s waiting for room to load b"), std::string::npos) << msg;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
  EXPECT_TRUE(find(s, "a"));

  lease_a.reset();
  auto lease_b = s.acquire(request("b"));
  EXPECT_FALSE(find(s, "a"));
  EXPECT_TRUE(pid_gone(pid_a));
  const std::string line = log_line("evicted to make room for b");
  EXPECT_NE(line.find("> budget"), std::string::npos) << log_text();
}

TEST_F(SchedTest, ModelLargerThanTheBudgetFailsAtOnce) {
  SchedConfig c = config();
  c.num_parallel = 1;
  c.available_memory = [] { return uint64_t{1000}; };
  Scheduler s(c);
  const std::string msg = error_of([&] { s.acquire(request("a")); });
  EXPECT_NE(msg.find("model a requires more memory"), std::string::npos) << msg;
  EXPECT_TRUE(s.ps().empty());
}

TEST_F(SchedTest, MemoryReserveIsKeptFree) {
  const ModelInfo m = read_model_info(model_, 512);
  const uint64_t one = runner_size_bytes(m, 256, 1);
  SchedConfig c = config();
  c.num_parallel = 1;
  c.available_memory = [one] { return one + 100; };
  c.memory_reserve = 101;
  Scheduler s(c);
  EXPECT_NE(error_of([&] { s.acquire(request("a")); }).find("requires more memory"), std::string::npos);
}

// A stand-in runner that answers /health 200 and ignores SIGTERM: the
// scheduler must escalate to SIGKILL rather than wait for it forever.
TEST_F(SchedTest, RunnerIgnoringSigtermIsKilled) {
  if (!std::filesystem::exists("/usr/bin/python3")) GTEST_SKIP() << "needs /usr/bin/python3 for the stand-in runner";
  const std::string www = dir_.file("www");
  std::filesystem::create_directory(www);
  std::ofstream(www + "/health") << "ok";
  const std::string exe = dir_.file("stubborn_runner.sh");
  std::ofstream(exe) << "#!/bin/sh\n"
                        "for a; do port=$a; done\n"  // --port P comes last
                        "trap '' TERM\n"
                        "exec /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "
                     << www << " \"$port\" 2>/dev/null\n";
  ::chmod(exe.c_str(), 0755);
  SchedConfig c = config();
  c.runner_exe = exe;
  Scheduler s(c);
  s.acquire(request("m"));
  const int pid = find(s, "m")->pid;
  ASSERT_TRUE(s.unload("m"));
  std::this_thread::sleep_for(1s);
  EXPECT_FALSE(pid_gone(pid));  // SIGTERM ignored
  EXPECT_TRUE(eventually([&] { return pid_gone(pid); }, 8s));
  EXPECT_NE(log_line("sent SIGKILL"), "") << log_text();
}

}  // namespace
}  // namespace pl::sched::test
