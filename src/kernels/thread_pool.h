// A persistent pool of worker threads for data-parallel kernels.
//
// A decode step issues a few hundred short parallel sections, so dispatch
// latency matters more than anything else here: workers spin on a generation
// counter for a while after each section (a new section then starts within a
// few hundred nanoseconds) and only then sleep on a futex (std::atomic::wait).
// Nothing is allocated per run.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace pl {

// Physical cores this process may run on (affinity mask x /sys topology,
// falling back to /proc/cpuinfo, then to std::thread::hardware_concurrency).
int default_thread_count();

class ThreadPool {
 public:
  // n_threads >= 1 counts the calling thread: n_threads - 1 workers start.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(slot, n_threads) once for every slot in [0, n_threads) and returns
  // when all are done. Slots are claimed by whichever threads are running, the
  // caller included: with more runnable threads than cores, a worker the OS has
  // not scheduled delays nothing, since its slot runs on a thread that is
  // there. So a slot must not wait for another one (no barrier(): see
  // run_together). An exception thrown by fn is rethrown here after all slots
  // have finished. Not reentrant: fn must not call run() on the same pool.
  template <class F>
  void run(F&& fn) {
    using Fn = std::remove_reference_t<F>;
    run_impl(&call<Fn>, const_cast<void*>(static_cast<const void*>(&fn)), false);
  }

  // As run(), but slot i runs on thread i, all at once, so fn may call
  // barrier(). Each run waits for every worker to be scheduled: use it only
  // where the phases cannot be split into separate run()s.
  template <class F>
  void run_together(F&& fn) {
    using Fn = std::remove_reference_t<F>;
    run_impl(&call<Fn>, const_cast<void*>(static_cast<const void*>(&fn)), true);
  }

  // Waits until all n threads of the current run_together() reach it. Only
  // valid inside its fn, called by every thread the same number of times.
  void barrier();

 private:
  using Trampoline = void (*)(void* ctx, int ith, int nth);
  template <class Fn>
  static void call(void* ctx, int ith, int nth) {
    (*static_cast<Fn*>(ctx))(ith, nth);
  }
  void run_impl(Trampoline tramp, void* ctx, bool together);
  void worker_main(int ith);
  void run_task(int slot);
  void claim_slots();  // runs unclaimed slots of the current run() until none is left

  int n_threads_;
  std::vector<std::thread> workers_;

  // Each run bumps generation_ by 2; bit 0 says run_together (worker i runs
  // slot i) rather than run (slots claimed through next_slot_).
  alignas(64) std::atomic<uint32_t> generation_{0};
  alignas(64) std::atomic<int> next_slot_{0};   // the next unclaimed slot of the current run()
  alignas(64) std::atomic<int> n_done_{0};      // slots finished in the current run
  alignas(64) std::atomic<int> n_sleeping_{0};  // workers blocked in generation_.wait
  alignas(64) std::atomic<uint32_t> barrier_count_{0};
  std::atomic<uint32_t> barrier_phase_{0};
  Trampoline tramp_ = nullptr;
  void* ctx_ = nullptr;
  bool stop_ = false;
  std::unique_ptr<std::exception_ptr[]> errors_;  // [n_threads]
};

}  // namespace pl
