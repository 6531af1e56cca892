// parse_duration, SchedConfig::from_env and the memory-aware default: no processes.
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sched/memory.h"
#include "sched/sched.h"
#include "test_util.h"

namespace pl::sched {
namespace {

using pl::test::error_of;
using namespace std::chrono_literals;

TEST(ParseDuration, OllamaForms) {
  EXPECT_EQ(parse_duration("5m"), Millis(300000));
  EXPECT_EQ(parse_duration("1h30m"), Millis(5400000));
  EXPECT_EQ(parse_duration("10s"), Millis(10000));
  EXPECT_EQ(parse_duration("300ms"), Millis(300));
  EXPECT_EQ(parse_duration("1.5s"), Millis(1500));
  EXPECT_EQ(parse_duration("1h0m0.5s"), Millis(3600500));
  EXPECT_EQ(parse_duration("300"), Millis(300000));  // a bare number is seconds
  EXPECT_EQ(parse_duration("1.5"), Millis(1500));
  EXPECT_EQ(parse_duration(" 2m "), Millis(120000));
  EXPECT_EQ(parse_duration("0"), Millis(0));
  EXPECT_EQ(parse_duration("0s"), Millis(0));
  EXPECT_EQ(parse_duration("500us"), Millis(1));  // positive never rounds down to "now"
  EXPECT_LT(parse_duration("-1").count(), 0);     // negative: forever
  EXPECT_LT(parse_duration("-5m").count(), 0);
  EXPECT_EQ(parse_duration("+5m"), Millis(300000));
}

TEST(ParseDuration, RejectsGarbage) {
  for (const char* bad : {"", " ", "abc", "5x", "5m30", "m", "1..5s", "--1", "-", "1e3", "5 m"})
    EXPECT_NE(error_of([&] { parse_duration(bad); }).find("invalid duration"), std::string::npos) << bad;
}

// Sets variables for one test and restores the environment after; every
// variable from_env reads starts unset, whatever the shell running the tests has.
class EnvGuard {
 public:
  EnvGuard() {
    for (const char* n : {"OLLAMA_NUM_PARALLEL", "OLLAMA_MAX_LOADED_MODELS", "OLLAMA_MAX_QUEUE", "OLLAMA_KEEP_ALIVE",
                          "OLLAMA_CONTEXT_LENGTH", "OLLAMA_LOAD_TIMEOUT", "PARALLAMA_THREADS",
                          "PARALLAMA_MEMORY_RESERVE", "PARALLAMA_AVAILABLE_MEMORY"})
      unset(n);
  }
  ~EnvGuard() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) ::setenv(it->first.c_str(), it->second->c_str(), 1);
      else ::unsetenv(it->first.c_str());
    }
  }
  void set(const std::string& name, const std::string& value) {
    save(name);
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  void unset(const std::string& name) {
    save(name);
    ::unsetenv(name.c_str());
  }

 private:
  void save(const std::string& name) {
    const char* v = std::getenv(name.c_str());
    saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST(FromEnv, Defaults) {
  EnvGuard env;
  const SchedConfig c = SchedConfig::from_env();
  EXPECT_FALSE(c.num_parallel);
  EXPECT_EQ(c.max_loaded_models, 3);
  EXPECT_EQ(c.max_queue, 512);
  EXPECT_EQ(c.keep_alive, Millis(300000));
  EXPECT_EQ(c.default_num_ctx, 4096);
  EXPECT_EQ(c.n_threads, 0);
  EXPECT_EQ(c.load_timeout, Millis(300000));
  EXPECT_EQ(c.memory_reserve, 1ull << 30);
  EXPECT_FALSE(c.available_memory);  // the Scheduler reads MemAvailable
  EXPECT_FALSE(c.runner_exe.empty());
}

TEST(FromEnv, GoodValues) {
  EnvGuard env;
  env.set("OLLAMA_NUM_PARALLEL", "3");
  env.set("OLLAMA_MAX_LOADED_MODELS", "2");
  env.set("OLLAMA_MAX_QUEUE", "7");
  env.set("OLLAMA_KEEP_ALIVE", "1h30m");
  env.set("OLLAMA_CONTEXT_LENGTH", "8192");
  env.set("OLLAMA_LOAD_TIMEOUT", "90s");
  env.set("PARALLAMA_THREADS", "2");
  env.set("PARALLAMA_MEMORY_RESERVE", "512MiB");
  env.set("PARALLAMA_AVAILABLE_MEMORY", "2000000000");
  const SchedConfig c = SchedConfig::from_env();
  ASSERT_TRUE(c.num_parallel);
  EXPECT_EQ(*c.num_parallel, 3);
  EXPECT_EQ(c.max_loaded_models, 2);
  EXPECT_EQ(c.max_queue, 7);
  EXPECT_EQ(c.keep_alive, Millis(5400000));
  EXPECT_EQ(c.default_num_ctx, 8192);
  EXPECT_EQ(c.load_timeout, Millis(90000));
  EXPECT_EQ(c.n_threads, 2);
  EXPECT_EQ(c.memory_reserve, 512ull << 20);
  ASSERT_TRUE(c.available_memory);
  EXPECT_EQ(c.available_memory(), 2000000000ull);
}

TEST(FromEnv, ZeroAndNegativeMeanWhatOllamaMeans) {
  EnvGuard env;
  env.set("OLLAMA_NUM_PARALLEL", "0");       // the default
  env.set("OLLAMA_MAX_LOADED_MODELS", "0");  // the default
  env.set("OLLAMA_KEEP_ALIVE", "-1");        // forever
  env.set("PARALLAMA_MEMORY_RESERVE", "");   // blank: unset
  const SchedConfig c = SchedConfig::from_env();
  EXPECT_FALSE(c.num_parallel);
  EXPECT_EQ(c.max_loaded_models, 3);
  EXPECT_LT(c.keep_alive.count(), 0);
  EXPECT_EQ(c.memory_reserve, 1ull << 30);
}

TEST(FromEnv, BadValuesNameTheVariable) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"OLLAMA_NUM_PARALLEL", "x"},     {"OLLAMA_NUM_PARALLEL", "-2"},  {"OLLAMA_NUM_PARALLEL", "2.5"},
      {"OLLAMA_MAX_LOADED_MODELS", "many"}, {"OLLAMA_MAX_QUEUE", "0"},  {"OLLAMA_MAX_QUEUE", "12abc"},
      {"OLLAMA_KEEP_ALIVE", "5 minutes"}, {"OLLAMA_CONTEXT_LENGTH", "0"}, {"OLLAMA_LOAD_TIMEOUT", "0"},
      {"OLLAMA_LOAD_TIMEOUT", "soon"},  {"PARALLAMA_THREADS", "-1"},   {"PARALLAMA_MEMORY_RESERVE", "1 parsec"},
      {"PARALLAMA_AVAILABLE_MEMORY", "-5"}};
  for (const auto& [name, value] : cases) {
    EnvGuard env;
    env.set(name, value);
    const std::string msg = error_of([] { SchedConfig::from_env(); });
    EXPECT_NE(msg.find(name), std::string::npos) << name << "=" << value << ": " << msg;
    EXPECT_NE(msg.find(value), std::string::npos) << name << "=" << value << ": " << msg;
  }
}

TEST(FromEnv, AutoParallelTurnsTheTunerOn) {
  EnvGuard env;
  env.set("OLLAMA_NUM_PARALLEL", "auto");
  const SchedConfig c = SchedConfig::from_env();
  EXPECT_TRUE(c.auto_parallel);
  EXPECT_FALSE(c.num_parallel.has_value());
}

TEST(DefaultParallel, FourWhenFourContextsFitElseOne) {
  const uint64_t weights = 1000, kv_per_token = 10, compute = 100;
  const int num_ctx = 50;  // 4 x 50 x 10 = 2000 bytes of KV
  std::string why;
  EXPECT_EQ(default_parallel(weights, kv_per_token, num_ctx, 3100, &why, compute), 4);
  EXPECT_NE(why.find("fits in"), std::string::npos) << why;
  EXPECT_NE(why.find("parallel 4"), std::string::npos) << why;
  EXPECT_EQ(default_parallel(weights, kv_per_token, num_ctx, 3099, &why, compute), 1);
  EXPECT_NE(why.find("exceeds"), std::string::npos) << why;
  EXPECT_NE(why.find("parallel 1"), std::string::npos) << why;
  EXPECT_EQ(default_parallel(weights, kv_per_token, num_ctx, 3000, nullptr), 4);  // compute defaults to 0
}

TEST(FormatBytes, HumanUnits) {
  EXPECT_EQ(format_bytes(17), "17 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(3ull << 30), "3.0 GiB");
}

}  // namespace
}  // namespace pl::sched
