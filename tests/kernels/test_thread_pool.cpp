// Thread pool: every thread runs each section exactly once, sections see each
// other's writes, barriers order phases, exceptions come back to the caller,
// and idle workers that went to sleep wake up again.
#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/error.h"
#include "kernels/thread_pool.h"

namespace pl {
namespace {

TEST(ThreadPool, DefaultThreadCountIsPhysicalCores) {
  const int n = default_thread_count();
  EXPECT_GE(n, 1);
  EXPECT_LE(n, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  std::printf("  default_thread_count() = %d\n", n);
}

TEST(ThreadPool, RejectsZeroThreads) { EXPECT_THROW(ThreadPool(0), Error); }

TEST(ThreadPool, ManyRunsEachThreadOnce) {
  for (int n : {1, 2, 3, 4}) {
    ThreadPool pool(n);
    EXPECT_EQ(pool.size(), n);
    std::vector<int> hits(static_cast<size_t>(n), 0);
    long total = 0;
    for (int run = 0; run < 20000; ++run) {
      std::atomic<int> count{0};
      pool.run([&](int ith, int nth) {
        ASSERT_EQ(nth, n);
        hits[static_cast<size_t>(ith)]++;
        count.fetch_add(ith + 1);
      });
      ASSERT_EQ(count.load(), n * (n + 1) / 2);
      total += count.load();
    }
    for (int h : hits) EXPECT_EQ(h, 20000);
    EXPECT_EQ(total, 20000L * n * (n + 1) / 2);
  }
}

TEST(ThreadPool, WritesAreVisibleAfterRun) {
  ThreadPool pool(2);
  std::vector<long> data(1 << 16);
  for (int run = 0; run < 200; ++run) {
    pool.run([&](int ith, int nth) {
      for (size_t i = static_cast<size_t>(ith); i < data.size(); i += static_cast<size_t>(nth)) data[i] = run + static_cast<long>(i);
    });
    long bad = 0;
    for (size_t i = 0; i < data.size(); ++i) bad += data[i] != run + static_cast<long>(i);
    ASSERT_EQ(bad, 0);
  }
}

TEST(ThreadPool, BarrierOrdersPhases) {
  ThreadPool pool(3);
  std::vector<int> a(3000), b(3000);
  for (int run = 0; run < 300; ++run) {
    pool.run_together([&](int ith, int nth) {
      for (size_t i = static_cast<size_t>(ith); i < a.size(); i += static_cast<size_t>(nth)) a[i] = run * 7 + static_cast<int>(i);
      pool.barrier();
      // Read what other threads wrote before the barrier.
      for (size_t i = static_cast<size_t>(ith); i < b.size(); i += static_cast<size_t>(nth)) b[i] = a[a.size() - 1 - i];
      pool.barrier();
      pool.barrier();
    });
    for (size_t i = 0; i < b.size(); ++i) ASSERT_EQ(b[i], run * 7 + static_cast<int>(a.size() - 1 - i));
  }
}

TEST(ThreadPool, RunAndRunTogetherInterleave) {
  ThreadPool pool(3);
  std::vector<int> a(999), b(999);
  for (int run = 0; run < 2000; ++run) {
    std::atomic<int> slots{0};
    pool.run([&](int ith, int nth) {
      for (size_t i = static_cast<size_t>(ith); i < a.size(); i += static_cast<size_t>(nth)) a[i] = run + static_cast<int>(i);
      slots.fetch_add(1 << (4 * ith));
    });
    ASSERT_EQ(slots.load(), 0x111);  // every slot exactly once
    pool.run_together([&](int ith, int nth) {
      pool.barrier();
      for (size_t i = static_cast<size_t>(ith); i < b.size(); i += static_cast<size_t>(nth)) b[i] = a[i] + 1;
    });
    for (size_t i = 0; i < b.size(); ++i) ASSERT_EQ(b[i], run + static_cast<int>(i) + 1);
  }
}

// More threads than cores (here: all pinned to one CPU): run() does not wait
// for workers the OS has not scheduled; the caller claims their slots.
TEST(ThreadPool, CallerTakesTheSlotsOfUnscheduledWorkers) {
  cpu_set_t saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &saved)) {
      CPU_SET(c, &one);
      break;
    }
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  long caller_slots = 0, total = 0;
  {
    ThreadPool pool(4);  // workers inherit the one-CPU mask
    const std::thread::id caller = std::this_thread::get_id();
    const int runs = 2000;
    for (int r = 0; r < runs; ++r) {
      std::atomic<int> mine{0}, all{0};
      pool.run([&](int, int) {
        all.fetch_add(1);
        if (std::this_thread::get_id() == caller) mine.fetch_add(1);
      });
      ASSERT_EQ(all.load(), 4);
      caller_slots += mine.load();
      total += all.load();
    }
    // A pool that waited for each worker would run exactly one slot per run here.
    EXPECT_GT(caller_slots, runs) << caller_slots << " of " << total << " slots ran on the caller";
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof saved, &saved), 0);
}

TEST(ThreadPool, ExceptionsReachTheCaller) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.run([](int ith, int) {
    if (ith == 1) throw std::runtime_error("worker failed");
  }), std::runtime_error);
  EXPECT_THROW(pool.run([](int ith, int) {
    if (ith == 0) throw std::runtime_error("caller failed");
  }), std::runtime_error);
  // The pool still works afterwards.
  std::atomic<int> n{0};
  pool.run([&](int, int) { n++; });
  EXPECT_EQ(n.load(), 2);
}

TEST(ThreadPool, WakesAfterSleeping) {
  ThreadPool pool(2);
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // past the spin budget: workers sleep
    std::atomic<int> n{0};
    pool.run([&](int, int) { n++; });
    EXPECT_EQ(n.load(), 2);
  }
}

TEST(ThreadPool, DispatchLatency) {
  ThreadPool pool(2);
  const int runs = 20000;
  std::atomic<long> sink{0};
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < runs; ++i) pool.run([&](int ith, int) { sink.fetch_add(ith, std::memory_order_relaxed); });
  auto dt = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  std::printf("  empty run() on 2 threads: %.2f us each\n", dt / runs);
  EXPECT_EQ(sink.load(), runs);
}

}  // namespace
}  // namespace pl
