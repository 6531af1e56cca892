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

// How long an idle worker spins (yielding to any other runnable thread)
// before it sleeps. Long enough to bridge the gaps between the forward passes
// of a serving engine (sampling, streaming, scheduling), not only between the
// sections of one pass; short enough that an idle server soon stops. On a
// virtual machine a sleeping worker idles its vCPU, the host hands the core to
// someone else, and getting it back costs milliseconds: with 300 us the
// runner at 8 streams lost 13% of its time to steal, and the engine thread
// waited > 3 ms for a worker 50 times in 25 s (1.1 s in all); with 20 ms,
// steal fell to 0.8% and those waits to 2.
constexpr auto kSpinBudget = std::chrono::milliseconds(20);

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
  generation_.store(generation_.load(std::memory_order_relaxed) + 2, std::memory_order_seq_cst);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_task(int slot) {
  try {
    tramp_(ctx_, slot, n_threads_);
  } catch (...) {
    errors_[slot] = std::current_exception();
  }
  n_done_.fetch_add(1, std::memory_order_acq_rel);
}

void ThreadPool::claim_slots() {
  // A worker that woke late may claim from the next run() here: the caller
  // publishes that run's task before resetting next_slot_ (release), which
  // this fetch_add reads (acquire); and a run_together() sets next_slot_ past
  // the end first, so nothing is claimed from it.
  for (;;) {
    const int s = next_slot_.fetch_add(1, std::memory_order_acq_rel);
    if (s >= n_threads_) return;
    run_task(s);
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
    if ((g & 1) != 0) run_task(ith);  // run_together: this thread's own slot
    else claim_slots();
  }
}

void ThreadPool::run_impl(Trampoline tramp, void* ctx, bool together) {
  if (n_threads_ == 1) {
    tramp(ctx, 0, 1);
    return;
  }
  tramp_ = tramp;
  ctx_ = ctx;
  n_done_.store(0, std::memory_order_relaxed);
  next_slot_.store(together ? n_threads_ : 0, std::memory_order_release);
  const uint32_t g = generation_.load(std::memory_order_relaxed);
  generation_.store(((g >> 1) + 1) << 1 | (together ? 1u : 0u), std::memory_order_seq_cst);
  if (n_sleeping_.load(std::memory_order_seq_cst) > 0) generation_.notify_all();
  if (together) run_task(0);
  else claim_slots();
  // What is left is a slot some worker is running (or, for run_together, a
  // worker not yet scheduled).
  for (int i = 0; n_done_.load(std::memory_order_acquire) != n_threads_; ++i) {
    PL_CPU_RELAX();
    if (i > 1024 && (i & 15) == 0) std::this_thread::yield();
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
