// Shared by the scheduler tests that start real runners: tiny models, a config
// that captures the log, and small waiting helpers.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/random_model.h"
#include "model_fixture.h"
#include "sched/health.h"
#include "sched/memory.h"
#include "sched/sched.h"
#include "test_util.h"

namespace pl::sched::test {

using namespace std::chrono_literals;
using pl::test::kBin;
using pl::test::TempDir;

// True once `pred` holds, polling until `timeout`.
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

// The process is gone (exited and reaped), not merely a zombie.
inline bool pid_gone(int pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

class SchedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = dir_.file("small.gguf");
    write_random_model(pl::test::small_model_spec(), model_, 1);
  }

  // Runners with one compute thread (the machine is small and shared), 16 GiB
  // of pretend memory with no reserve, and every log line captured.
  SchedConfig config() {
    SchedConfig c;
    c.runner_exe = kBin;
    c.n_threads = 1;
    c.default_num_ctx = 256;
    c.load_timeout = 30s;
    c.memory_reserve = 0;
    c.available_memory = [] { return uint64_t{16} << 30; };
    c.log = [this](const std::string& line) {
      std::lock_guard lk(log_mu_);
      log_.push_back(line);
    };
    return c;
  }

  ModelRequest request(const std::string& key, int num_ctx = 0) const {
    ModelRequest r;
    r.key = key;
    r.gguf = model_;
    r.num_ctx = num_ctx;
    return r;
  }

  std::vector<std::string> log() const {
    std::lock_guard lk(log_mu_);
    return log_;
  }
  // The first captured line containing `needle`, or "".
  std::string log_line(const std::string& needle) const {
    for (const std::string& l : log())
      if (l.find(needle) != std::string::npos) return l;
    return "";
  }
  std::string log_text() const {
    std::string s;
    for (const std::string& l : log()) s += l + "\n";
    return s;
  }

  static std::optional<RunnerInfo> find(const Scheduler& s, const std::string& key) {
    for (const RunnerInfo& i : s.ps())
      if (i.key == key) return i;
    return std::nullopt;
  }
  static bool healthy(int port) { return check_health(port, 1s).health == Health::Ready; }

  TempDir dir_;
  std::string model_;
  mutable std::mutex log_mu_;
  std::vector<std::string> log_;
};

}  // namespace pl::sched::test
