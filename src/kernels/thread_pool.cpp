#include "kernels/thread_pool.h"

#include <sched.h>

#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#include "core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PL_CPU_RELAX() _mm_pause()
#else
#define PL_CPU_RELAX() ((void)0)
#endif

namespace pl {
namespace {

// How long an idle worker spins before sleeping. Long enough to bridge the
// gaps between the parallel sections of one forward pass, short enough that
// an idle server does not burn a core.
constexpr auto kSpinBudget = std::chrono::microseconds(300);

bool read_int_file(const std::string& path, int& out) {
  std::ifstream f(path);
  return static_cast<bool>(f >> out);
}

std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

// Physical cores from /proc/cpuinfo ("physical id", "core id" per processor).
int cores_from_cpuinfo(const std::vector<int>& cpus) {
  std::ifstream f("/proc/cpuinfo");
  if (!f) return 0;
  std::set<int> allowed(cpus.begin(), cpus.end());
  std::set<std::pair<int, int>> cores;
  std::string line;
  int proc = -1, pkg = 0, core = -1;
  auto flush = [&] {
    if (proc >= 0 && core >= 0 && (allowed.empty() || allowed.count(proc))) cores.insert({pkg, core});
    proc = -1, pkg = 0, core = -1;
  };
  while (std::getline(f, line)) {
    auto colon = line.find(':');
    if (line.empty()) {
      flush();
      continue;
    }
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    int value = 0;
    try {
      value = std::stoi(line.substr(colon + 1));
    } catch (...) {
      continue;
    }
    if (key == "processor") proc = value;
    else if (key == "physical id") pkg = value;
    else if (key == "core id") core = value;
  }
  flush();
  return static_cast<int>(cores.size());
}

}  // namespace

int default_thread_count() {
  std::vector<int> cpus = allowed_cpus();
  std::set<std::pair<int, int>> cores;
  bool sys_ok = !cpus.empty();
  for (int c : cpus) {
    std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(c) + "/topology/";
    int pkg = 0, core = 0;
    if (!read_int_file(base + "core_id", core) || !read_int_file(base + "physical_package_id", pkg)) {
      sys_ok = false;
      break;
    }
    cores.insert({pkg, core});
  }
  if (sys_ok && !cores.empty()) return static_cast<int>(cores.size());
  if (int n = cores_from_cpuinfo(cpus); n > 0) return n;
  if (!cpus.empty()) return static_cast<int>(cpus.size());
  unsigned hc = std::thread::hardware_concurrency();
  return hc > 0 ? static_cast<int>(hc) : 1;
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads) {
  if (n_threads < 1) fail("thread pool: n_threads must be >= 1, got {}", n_threads);
  errors_ = std::make_unique<std::exception_ptr[]>(static_cast<size_t>(n_threads));
  workers_.reserve(static_cast<size_t>(n_threads - 1));
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
  stop_ = true;
  generation_.fetch_add(1, std::memory_order_seq_cst);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_task(int ith) {
  try {
    tramp_(ctx_, ith, n_threads_);
  } catch (...) {
    errors_[ith] = std::current_exception();
  }
}

void ThreadPool::worker_main(int ith) {
  uint32_t seen = 0;
  for (;;) {
    uint32_t g = generation_.load(std::memory_order_acquire);
    if (g == seen) {
      auto start = std::chrono::steady_clock::now();
      for (int i = 0; (g = generation_.load(std::memory_order_acquire)) == seen; ++i) {
        PL_CPU_RELAX();
        if ((i & 63) == 63) {
          if (std::chrono::steady_clock::now() - start > kSpinBudget) break;
          // With more runnable threads than cores, give the core to whoever
          // has real work (often the thread that will start the next run).
          if (i >= 1024) std::this_thread::yield();
        }
      }
      while (g == seen) {
        n_sleeping_.fetch_add(1, std::memory_order_seq_cst);
        g = generation_.load(std::memory_order_seq_cst);
        if (g == seen) generation_.wait(seen, std::memory_order_seq_cst);
        n_sleeping_.fetch_sub(1, std::memory_order_relaxed);
        g = generation_.load(std::memory_order_acquire);
      }
    }
    seen = g;
    if (stop_) return;
    run_task(ith);
    n_pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run_impl(Trampoline tramp, void* ctx) {
  if (n_threads_ == 1) {
    tramp(ctx, 0, 1);
    return;
  }
  tramp_ = tramp;
  ctx_ = ctx;
  n_pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (n_sleeping_.load(std::memory_order_seq_cst) > 0) generation_.notify_all();
  run_task(0);
  for (int i = 0; n_pending_.load(std::memory_order_acquire) != 0; ++i) {
    PL_CPU_RELAX();
    if (i > 1024 && (i & 15) == 0) std::this_thread::yield();  // a worker was descheduled: let it run
  }
  for (int i = 0; i < n_threads_; ++i) {
    if (errors_[i]) {
      std::exception_ptr e = std::exchange(errors_[i], nullptr);
      for (int j = i + 1; j < n_threads_; ++j) errors_[j] = nullptr;
      std::rethrow_exception(e);
    }
  }
}

void ThreadPool::barrier() {
  if (n_threads_ == 1) return;
  const uint32_t phase = barrier_phase_.load(std::memory_order_acquire);
  if (barrier_count_.fetch_add(1, std::memory_order_acq_rel) == static_cast<uint32_t>(n_threads_ - 1)) {
    barrier_count_.store(0, std::memory_order_relaxed);
    barrier_phase_.store(phase + 1, std::memory_order_release);
    return;
  }
  for (int i = 0; barrier_phase_.load(std::memory_order_acquire) == phase; ++i) {
    PL_CPU_RELAX();
    if (i > 1024 && (i & 15) == 0) std::this_thread::yield();
  }
}

}  // namespace pl
