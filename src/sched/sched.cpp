// The scheduler's mechanism: a table of runner processes guarded by one mutex,
// a monitor thread (reaps children, expires keep-alives, escalates SIGTERM to
// SIGKILL), and acquire(), which loads on the calling thread.
//
// A runner's states, and who moves it:
//   Loading  -> Ready      acquire() (the one that started it) saw /health 200
//   Loading  -> Stopping   the load failed or timed out, or shutdown
//   Ready    -> Stopping   keep-alive ran out, unload(), eviction, reload, shutdown
//   any      -> (gone)     the monitor reaped the process (crash, kill -9, or after Stopping)
// Only Loading and Ready runners are in `by_key` (what acquire() and ps() see);
// every runner not yet reaped is in `runners`, and counts against memory and
// OLLAMA_MAX_LOADED_MODELS, so a stopped model's memory is free before the next loads.
#include "sched/sched.h"

#include <signal.h>
#include <time.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "kernels/thread_pool.h"
#include "sched/health.h"
#include "sched/memory.h"
#include "sched/process.h"

namespace pl::sched {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

constexpr const char* kBusyMessage = "server busy, please try again.  maximum pending requests exceeded";
constexpr auto kTick = std::chrono::milliseconds(50);          // the monitor's pass interval
constexpr auto kKillAfter = std::chrono::seconds(5);           // SIGTERM -> SIGKILL
constexpr auto kShutdownWait = std::chrono::seconds(8);        // the destructor's bound on exits
constexpr auto kHealthTimeout = std::chrono::milliseconds(500);
constexpr auto kHealthInterval = std::chrono::milliseconds(10);
constexpr size_t kExitReasonsKept = 256;

enum class RunnerState { Loading, Ready, Stopping };

struct Runner {
  uint64_t id = 0;
  std::string key;
  fs::path gguf;
  pid_t pid = -1;
  int port = 0;
  RunnerState state = RunnerState::Loading;
  int num_parallel = 1;
  std::string parallel_source;
  int num_ctx = 0;  // per sequence
  int pool_ctx = 0; // the runner's KV pool in tokens (--ctx-size)
  uint64_t weights_bytes = 0;
  uint64_t size_bytes = 0;
  int in_flight = 0;
  Clock::time_point last_used;
  Millis keep_alive{0};                  // applied when in_flight drops to 0
  std::optional<Clock::time_point> expires;
  bool stop_when_idle = false;           // unload() while in use
  bool draining = false;                 // a request needs it reloaded: no new leases
  Clock::time_point term_sent;
  bool kill_sent = false;
  bool exited = false;
  std::string exit_reason;               // "llama runner process has terminated: ..."
  std::unique_ptr<StderrRelay> relay;    // its stderr, pumped by the monitor
  bool load_failed = false;
  std::string load_error;                // for the requests that waited on this load
};

std::string millis_text(Millis d) {
  const auto ms = d.count();
  if (ms % 3600000 == 0) return std::to_string(ms / 3600000) + "h";
  if (ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

void default_log(const std::string& msg) {
  const auto now = std::chrono::system_clock::now();
  const time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  tm utc{};
  gmtime_r(&t, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  // One write per line, so lines from several threads (and runners) do not interleave.
  const std::string line = fmt::format("{}.{:03d}Z sched: {}\n", stamp, static_cast<int>(ms), msg);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace

class SchedulerCore {
 public:
  explicit SchedulerCore(SchedConfig c) : cfg(std::move(c)) {}

  SchedConfig cfg;
  mutable std::mutex mu;
  std::condition_variable cv;          // any runner or lease changed
  std::condition_variable monitor_cv;  // wakes the monitor to quit
  std::map<uint64_t, std::shared_ptr<Runner>> runners;       // every runner not yet reaped
  std::map<std::string, std::shared_ptr<Runner>> by_key;     // Loading or Ready, one per model
  std::map<uint64_t, std::string> exit_reasons;              // reaped runners, the last kExitReasonsKept
  std::deque<uint64_t> exit_order;
  struct CachedInfo {
    uint64_t file_size;
    fs::file_time_type mtime;
    ModelInfo info;
  };
  std::map<std::string, CachedInfo> info_cache;
  // A model being reloaded for a larger context: the least num_ctx its next
  // runner gets, whichever waiting request starts it.
  std::map<std::string, int> reload_num_ctx;
  // Limits set through the admin API, applied to the model's later loads too.
  std::map<std::string, int> admin_parallel;
  uint64_t next_id = 1;
  int n_waiting = 0;  // acquire() calls blocked on a load, a reload or room
  bool shutting_down = false;
  bool monitor_quit = false;
  std::thread monitor;

  std::unique_ptr<Lease> acquire(const ModelRequest& req, const std::shared_ptr<SchedulerCore>& self);
  void release(uint64_t runner_id);
  std::string exit_reason(uint64_t runner_id);
  void run_monitor();
  void shutdown();

  struct Plan {
    int num_ctx = 0;
    int num_parallel = 1;
    std::string parallel_source;
    uint64_t size_bytes = 0;
  };

  ModelInfo model_info(const fs::path& gguf);
  uint64_t budget() const;
  Plan plan(const ModelRequest& req, const ModelInfo& info, int num_ctx, std::vector<std::string>& notes) const;
  int queued_total() const;
  void check_busy() const;
  bool make_room(const std::string& key, uint64_t size_bytes);
  std::shared_ptr<Runner> start_runner(const ModelRequest& req, const ModelInfo& info, const Plan& p);
  std::string wait_ready(const std::shared_ptr<Runner>& r, Clock::time_point deadline);
  std::unique_ptr<Lease> grant(const std::shared_ptr<Runner>& r, const ModelRequest& req, double load_ms,
                               const std::shared_ptr<SchedulerCore>& self);
  void stop_runner(const std::shared_ptr<Runner>& r, const std::string& why);
  void on_exit(const std::shared_ptr<Runner>& r, int status);
};

// --- acquire ---------------------------------------------------------------

ModelInfo SchedulerCore::model_info(const fs::path& gguf) {
  std::error_code ec_size, ec_time;
  const uint64_t size = fs::file_size(gguf, ec_size);
  const auto mtime = fs::last_write_time(gguf, ec_time);
  const bool stat_ok = !ec_size && !ec_time;
  if (stat_ok) {
    std::lock_guard lk(mu);
    auto it = info_cache.find(gguf.string());
    if (it != info_cache.end() && it->second.file_size == size && it->second.mtime == mtime) return it->second.info;
  }
  ModelInfo info = read_model_info(gguf, cfg.n_batch);
  if (stat_ok) {
    std::lock_guard lk(mu);
    info_cache[gguf.string()] = CachedInfo{size, mtime, info};
  }
  return info;
}

uint64_t SchedulerCore::budget() const {
  const uint64_t avail = cfg.available_memory();
  return avail > cfg.memory_reserve ? avail - cfg.memory_reserve : 0;
}

SchedulerCore::Plan SchedulerCore::plan(const ModelRequest& req, const ModelInfo& info, int num_ctx,
                                        std::vector<std::string>& notes) const {
  Plan p;
  p.num_ctx = num_ctx;
  const std::string who = info.name.empty() ? req.key : req.key + " (" + info.name + ")";
  if (!info.can_batch) {
    p.num_parallel = 1;
    p.parallel_source = "forced-1";
    notes.push_back(fmt::format("model architecture does not currently support parallel requests: "
                                "architecture {}, model {}; parallel 1",
                                info.arch, who));
  } else if (auto a = admin_parallel.find(req.key); a != admin_parallel.end()) {
    p.num_parallel = a->second;
    p.parallel_source = "admin";
    notes.push_back(fmt::format("parallel {} for {} (set through the admin API)", p.num_parallel, req.key));
  } else if (req.num_parallel) {
    if (*req.num_parallel < 1) fail("num_parallel must be at least 1, got {}", *req.num_parallel);
    p.num_parallel = *req.num_parallel;
    p.parallel_source = "modelfile";
    notes.push_back(fmt::format("parallel {} for {} (the model's num_parallel)", p.num_parallel, req.key));
  } else if (cfg.num_parallel) {
    p.num_parallel = *cfg.num_parallel;
    p.parallel_source = "env";
    notes.push_back(fmt::format("parallel {} for {} (OLLAMA_NUM_PARALLEL)", p.num_parallel, req.key));
  } else {
    std::string why;
    p.num_parallel = default_parallel(info.weights_bytes, info.kv_bytes_per_token, num_ctx, budget(), &why,
                                      info.compute_bytes);
    p.parallel_source = cfg.auto_parallel ? "auto" : "default";
    notes.push_back(fmt::format("memory-aware default for {}: {} (available {} - reserve {})", req.key, why,
                                format_bytes(cfg.available_memory()), format_bytes(cfg.memory_reserve)));
  }
  p.size_bytes = runner_size_bytes(info, num_ctx, p.num_parallel);
  return p;
}

int SchedulerCore::queued_total() const {
  int n = 0;
  for (const auto& [key, r] : by_key) n += std::max(0, r->in_flight - r->num_parallel);
  return n;
}

void SchedulerCore::check_busy() const {
  if (queued_total() + n_waiting + 1 > cfg.max_queue) throw BusyError(kBusyMessage);
}

// Evicts idle runners, least recently used first, until the new one fits both
// the memory budget and the model count. True when it fits now; false when it
// must wait (for evicted runners to exit, or busy ones to become idle).
bool SchedulerCore::make_room(const std::string& key, uint64_t size_bytes) {
  const uint64_t limit = budget();
  for (;;) {
    uint64_t used_live = 0, used_all = 0;
    int n_live = 0;
    for (const auto& [id, r] : runners) {
      used_all += r->size_bytes;
      if (r->state == RunnerState::Stopping) continue;
      used_live += r->size_bytes;
      ++n_live;
    }
    const bool memory_ok = used_live + size_bytes <= limit;
    const bool count_ok = n_live < cfg.max_loaded_models;
    // Enough is free once the stopping runners have exited; wait for that.
    if (memory_ok && count_ok)
      return used_all + size_bytes <= limit && static_cast<int>(runners.size()) < cfg.max_loaded_models;
    std::shared_ptr<Runner> victim;
    for (const auto& [id, r] : runners)
      if (r->state == RunnerState::Ready && r->in_flight == 0 && (!victim || r->last_used < victim->last_used))
        victim = r;
    if (!victim) return false;
    const std::string why =
        count_ok ? fmt::format("evicted to make room for {}: {} in use + {} needed > budget {}", key,
                               format_bytes(used_live), format_bytes(size_bytes), format_bytes(limit))
                 : fmt::format("evicted to make room for {}: {} models loaded (OLLAMA_MAX_LOADED_MODELS)", key, n_live);
    stop_runner(victim, why);
  }
}

std::shared_ptr<Runner> SchedulerCore::start_runner(const ModelRequest& req, const ModelInfo& info, const Plan& p) {
  auto r = std::make_shared<Runner>();
  r->id = next_id++;
  r->key = req.key;
  r->gguf = req.gguf;
  r->num_parallel = p.num_parallel;
  r->parallel_source = p.parallel_source;
  r->pool_ctx = p.num_ctx * p.num_parallel;
  r->num_ctx = p.num_ctx;
  r->weights_bytes = info.weights_bytes;
  r->size_bytes = p.size_bytes;
  r->last_used = Clock::now();
  r->keep_alive = req.keep_alive.value_or(cfg.keep_alive);
  r->port = free_loopback_port();
  const int n_threads = cfg.n_threads > 0 ? cfg.n_threads : default_thread_count();
  const std::vector<std::string> argv = {cfg.runner_exe.string(),
                                         "runner",
                                         "--model",
                                         req.gguf.string(),
                                         "--ctx-size",
                                         std::to_string(p.num_ctx * p.num_parallel),
                                         "--batch-size",
                                         std::to_string(cfg.n_batch),
                                         "--threads",
                                         std::to_string(n_threads),
                                         "--parallel",
                                         std::to_string(p.num_parallel),
                                         "--port",
                                         std::to_string(r->port)};
  std::string cmd;
  for (const std::string& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  cfg.log(fmt::format("starting llama server cmd=\"{}\"", cmd));
  int stderr_fd = -1;
  r->pid = spawn_process(argv, &stderr_fd);
  r->relay = std::make_unique<StderrRelay>(stderr_fd);
  runners[r->id] = r;
  by_key[r->key] = r;
  return r;
}

// Polls /health without the lock; "" when ready, else why the load failed.
std::string SchedulerCore::wait_ready(const std::shared_ptr<Runner>& r, Clock::time_point deadline) {
  for (;;) {
    {
      std::lock_guard lk(mu);
      if (r->exited) return r->exit_reason;
      if (r->state == RunnerState::Stopping)
        return shutting_down ? "the scheduler is shutting down" : "the runner was stopped while loading " + r->key;
    }
    if (Clock::now() >= deadline)
      return fmt::format("timed out after {} waiting for the llama runner to load {} (OLLAMA_LOAD_TIMEOUT)",
                         millis_text(cfg.load_timeout), r->key);
    const HealthReply h = check_health(r->port, kHealthTimeout);
    if (h.health == Health::Ready) return "";
    if (h.health == Health::Failed) return fmt::format("llama runner failed to load {}: {}", r->key, h.error);
    std::this_thread::sleep_for(kHealthInterval);
  }
}

std::unique_ptr<Lease> SchedulerCore::grant(const std::shared_ptr<Runner>& r, const ModelRequest& req,
                                            double load_ms, const std::shared_ptr<SchedulerCore>& self) {
  ++r->in_flight;
  r->expires.reset();
  r->last_used = Clock::now();
  r->keep_alive = req.keep_alive.value_or(cfg.keep_alive);
  std::unique_ptr<Lease> lease(new Lease());
  lease->core_ = self;
  lease->runner_id_ = r->id;
  lease->key_ = r->key;
  lease->port_ = r->port;
  lease->num_ctx_ = r->num_ctx;
  lease->num_parallel_ = r->num_parallel;
  lease->load_ms_ = load_ms;
  return lease;
}

std::unique_ptr<Lease> SchedulerCore::acquire(const ModelRequest& req, const std::shared_ptr<SchedulerCore>& self) {
  if (req.key.empty()) fail("the model name is empty");
  if (req.num_ctx < 0) fail("num_ctx must be positive, got {}", req.num_ctx);
  const auto t0 = Clock::now();
  const auto deadline = t0 + cfg.load_timeout;
  const ModelInfo info = model_info(req.gguf);
  int num_ctx = req.num_ctx > 0 ? req.num_ctx : cfg.default_num_ctx;
  std::string clamp_note;
  if (num_ctx > info.n_ctx_train) {
    clamp_note = fmt::format("num_ctx {} for {} is more than the model's context length: using {}", num_ctx,
                             req.key, info.n_ctx_train);
    num_ctx = info.n_ctx_train;
  }

  std::unique_lock lk(mu);
  bool counted = false;  // in n_waiting
  struct Uncount {
    SchedulerCore* core;
    bool* counted;
    ~Uncount() {
      if (*counted) --core->n_waiting;
    }
  } uncount{this, &counted};
  auto start_waiting = [&] {
    if (counted) return;
    check_busy();
    ++n_waiting;
    counted = true;
  };
  auto wait = [&](const std::string& what) {
    if (cv.wait_until(lk, deadline) == std::cv_status::timeout)
      fail("timed out after {} waiting for {} (OLLAMA_LOAD_TIMEOUT)", millis_text(cfg.load_timeout), what);
  };
  auto waited_ms = [&] {
    return counted ? std::chrono::duration<double, std::milli>(Clock::now() - t0).count() : 0.0;
  };
  std::shared_ptr<Runner> waited_on;  // a load someone else started
  for (;;) {
    if (shutting_down) fail("the scheduler is shutting down");
    if (waited_on && waited_on->load_failed) fail("{}", waited_on->load_error);
    if (auto it = by_key.find(req.key); it != by_key.end()) {
      const std::shared_ptr<Runner> r = it->second;
      if (num_ctx > r->num_ctx) reload_num_ctx[req.key] = std::max(reload_num_ctx[req.key], num_ctx);
      if (!r->draining && (num_ctx > r->num_ctx || r->gguf != req.gguf)) {
        r->draining = true;
        cfg.log(num_ctx > r->num_ctx
                    ? fmt::format("{} needs num_ctx {} (loaded with {}): reloading when its {} request(s) finish",
                                  req.key, num_ctx, r->num_ctx, r->in_flight)
                    : fmt::format("{} now has weights {}: reloading when its {} request(s) finish", req.key,
                                  req.gguf.string(), r->in_flight));
      }
      if (r->draining) {
        if (r->state == RunnerState::Ready && r->in_flight == 0) {
          stop_runner(r, "reloading");
          continue;
        }
        start_waiting();
        wait(req.key + " to finish its requests before reloading");
        continue;
      }
      if (r->state == RunnerState::Loading) {
        waited_on = r;
        start_waiting();
        wait(req.key + " to load");
        continue;
      }
      if (r->in_flight >= r->num_parallel && !counted) check_busy();
      return grant(r, req, waited_ms(), self);
    }

    std::vector<std::string> notes;
    const auto reload = reload_num_ctx.find(req.key);
    const int start_ctx = reload != reload_num_ctx.end() ? std::max(num_ctx, reload->second) : num_ctx;
    const Plan p = plan(req, info, start_ctx, notes);
    const uint64_t limit = budget();
    if (p.size_bytes > limit)
      fail("model {} requires more memory ({}: weights {} + KV for {} x {} tokens + compute) than is available ({})",
           req.key, format_bytes(p.size_bytes), format_bytes(info.weights_bytes), p.num_parallel, p.num_ctx,
           format_bytes(limit));
    start_waiting();  // from here until ready this request waits for a load
    if (!make_room(req.key, p.size_bytes)) {
      wait(fmt::format("room to load {} ({}; {} model(s) loaded, all busy)", req.key, format_bytes(p.size_bytes),
                       runners.size()));
      continue;
    }
    if (!clamp_note.empty()) cfg.log(clamp_note);
    for (const std::string& n : notes) cfg.log(n);
    const std::shared_ptr<Runner> r = start_runner(req, info, p);
    reload_num_ctx.erase(req.key);
    lk.unlock();
    std::string error;
    try {
      error = wait_ready(r, deadline);
    } catch (const std::exception& e) {  // the runner must not stay Loading with its waiters stuck
      error = fmt::format("cannot reach the llama runner for {}: {}", r->key, e.what());
    }
    lk.lock();
    if (!error.empty()) {
      r->load_failed = true;
      r->load_error = error;
      if (auto it = by_key.find(r->key); it != by_key.end() && it->second == r) by_key.erase(it);
      if (!r->exited && r->state != RunnerState::Stopping) stop_runner(r, "the load failed");
      cv.notify_all();
      cfg.log(error);
      fail("{}", error);
    }
    r->state = RunnerState::Ready;
    cfg.log(fmt::format("llama runner for {} (pid {}, port {}) ready in {:.2f} s", r->key, r->pid, r->port,
                        std::chrono::duration<double>(Clock::now() - t0).count()));
    cv.notify_all();
    return grant(r, req, waited_ms(), self);
  }
}

// --- lease end, stop, exit ----------------------------------------------------

void SchedulerCore::release(uint64_t runner_id) {
  std::lock_guard lk(mu);
  auto it = runners.find(runner_id);
  if (it == runners.end()) return;  // it died, or the scheduler is gone
  const std::shared_ptr<Runner> r = it->second;
  PL_CHECK(r->in_flight > 0, "lease released on runner {} with no leases", r->id);
  --r->in_flight;
  r->last_used = Clock::now();
  if (r->in_flight == 0 && r->state == RunnerState::Ready) {
    if (r->draining) stop_runner(r, "reloading");
    else if (r->stop_when_idle) stop_runner(r, "unloaded");
    else if (r->keep_alive.count() == 0) stop_runner(r, "keep_alive 0");
    else if (r->keep_alive.count() > 0) r->expires = r->last_used + r->keep_alive;
  }
  cv.notify_all();
}

void SchedulerCore::stop_runner(const std::shared_ptr<Runner>& r, const std::string& why) {
  if (r->state == RunnerState::Stopping) return;
  r->state = RunnerState::Stopping;
  r->expires.reset();
  if (auto it = by_key.find(r->key); it != by_key.end() && it->second == r) by_key.erase(it);
  r->term_sent = Clock::now();
  if (!r->exited) send_signal(r->pid, SIGTERM);
  cfg.log(fmt::format("stopping llama runner for {} (pid {}): {}", r->key, r->pid, why));
  cv.notify_all();
}

void SchedulerCore::on_exit(const std::shared_ptr<Runner>& r, int status) {
  r->exited = true;
  // The child is gone, so all it wrote is in the pipe: its last error line
  // says more than the exit status it ended with.
  r->relay->pump();
  const std::string& said = r->relay->last_error();
  r->exit_reason = "llama runner process has terminated: " +
                   (status != 0 && !said.empty() ? said : describe_wait_status(status));
  const bool expected = r->state == RunnerState::Stopping;
  runners.erase(r->id);
  if (auto it = by_key.find(r->key); it != by_key.end() && it->second == r) by_key.erase(it);
  exit_reasons[r->id] = r->exit_reason;
  exit_order.push_back(r->id);
  while (exit_order.size() > kExitReasonsKept) {
    exit_reasons.erase(exit_order.front());
    exit_order.pop_front();
  }
  cfg.log(expected ? fmt::format("llama runner for {} (pid {}) stopped: {}", r->key, r->pid,
                                 describe_wait_status(status))
                   : fmt::format("{} (model {}, pid {}, {}, {} request(s) in flight)", r->exit_reason, r->key,
                                 r->pid, describe_wait_status(status), r->in_flight));
  cv.notify_all();
}

std::string SchedulerCore::exit_reason(uint64_t runner_id) {
  std::unique_lock lk(mu);
  const auto deadline = Clock::now() + std::chrono::seconds(1);
  for (;;) {
    if (auto it = exit_reasons.find(runner_id); it != exit_reasons.end()) return it->second;
    if (runners.find(runner_id) == runners.end()) return "llama runner process is no longer running";
    if (cv.wait_until(lk, deadline) == std::cv_status::timeout) {
      if (auto it = exit_reasons.find(runner_id); it != exit_reasons.end()) return it->second;
      return "";
    }
  }
}

void SchedulerCore::run_monitor() {
  std::unique_lock lk(mu);
  while (!monitor_quit) {
    const auto now = Clock::now();
    std::vector<std::shared_ptr<Runner>> all;
    for (const auto& [id, r] : runners) all.push_back(r);
    for (const std::shared_ptr<Runner>& r : all) {
      r->relay->pump();
      if (auto status = try_reap(r->pid)) {
        on_exit(r, *status);
        continue;
      }
      if (r->state == RunnerState::Ready && r->in_flight == 0 && r->expires && *r->expires <= now)
        stop_runner(r, "keep_alive expired");
      if (r->state == RunnerState::Stopping && !r->kill_sent && now - r->term_sent >= kKillAfter) {
        r->kill_sent = true;
        send_signal(r->pid, SIGKILL);
        cfg.log(fmt::format("llama runner for {} (pid {}) ignored SIGTERM for {} s: sent SIGKILL", r->key, r->pid,
                            std::chrono::duration_cast<std::chrono::seconds>(kKillAfter).count()));
      }
    }
    monitor_cv.wait_for(lk, kTick);
  }
}

void SchedulerCore::shutdown() {
  {
    std::unique_lock lk(mu);
    shutting_down = true;
    std::vector<std::shared_ptr<Runner>> all;
    for (const auto& [id, r] : runners) all.push_back(r);
    for (const std::shared_ptr<Runner>& r : all) stop_runner(r, "shutting down");
    cv.notify_all();
    if (!cv.wait_until(lk, Clock::now() + kShutdownWait, [&] { return runners.empty(); }))
      for (const auto& [id, r] : runners)
        cfg.log(fmt::format("llama runner for {} (pid {}) did not exit after SIGKILL; leaving it", r->key, r->pid));
    monitor_quit = true;
    monitor_cv.notify_all();
  }
  if (monitor.joinable()) monitor.join();
}

// --- public surface -----------------------------------------------------------

Lease::~Lease() {
  if (auto core = core_.lock()) core->release(runner_id_);
}

std::string Lease::runner_exit_reason() const {
  if (auto core = core_.lock()) return core->exit_reason(runner_id_);
  return "the scheduler has stopped";
}

Scheduler::Scheduler(SchedConfig cfg) {
  if (cfg.runner_exe.empty()) {
    std::error_code ec;
    cfg.runner_exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) fail("cannot find the parallama binary to start runners: /proc/self/exe: {}", ec.message());
  }
  if (cfg.num_parallel && *cfg.num_parallel < 1) fail("num_parallel must be at least 1, got {}", *cfg.num_parallel);
  if (cfg.max_loaded_models <= 0) cfg.max_loaded_models = 3;
  if (cfg.max_queue < 1) fail("max_queue must be at least 1, got {}", cfg.max_queue);
  if (cfg.default_num_ctx < 1) fail("the default num_ctx must be positive, got {}", cfg.default_num_ctx);
  if (cfg.n_batch < 1) fail("n_batch must be positive, got {}", cfg.n_batch);
  if (cfg.n_threads < 0) fail("n_threads must not be negative, got {}", cfg.n_threads);
  if (cfg.load_timeout.count() <= 0) fail("load_timeout must be positive");
  if (!cfg.available_memory) cfg.available_memory = mem_available_bytes;
  if (!cfg.log) cfg.log = default_log;
  core_ = std::make_shared<SchedulerCore>(std::move(cfg));
  core_->monitor = std::thread([core = core_.get()] { core->run_monitor(); });
}

Scheduler::~Scheduler() { core_->shutdown(); }

std::unique_ptr<Lease> Scheduler::acquire(const ModelRequest& req) {
  const std::shared_ptr<SchedulerCore> core = core_;  // alive even if this Scheduler is being destroyed
  return core->acquire(req, core);
}

bool Scheduler::unload(const std::string& key) {
  std::lock_guard lk(core_->mu);
  auto it = core_->by_key.find(key);
  if (it == core_->by_key.end()) return false;
  const std::shared_ptr<Runner> r = it->second;
  if (r->state == RunnerState::Ready && r->in_flight == 0) {
    core_->stop_runner(r, "unloaded");
  } else {
    r->stop_when_idle = true;
  }
  return true;
}

std::vector<RunnerInfo> Scheduler::ps() const {
  std::lock_guard lk(core_->mu);
  std::vector<RunnerInfo> out;
  const auto steady_now = Clock::now();
  const auto system_now = std::chrono::system_clock::now();
  for (const auto& [key, r] : core_->by_key) {
    RunnerInfo i;
    i.key = r->key;
    i.gguf = r->gguf;
    i.pid = r->pid;
    i.port = r->port;
    i.ready = r->state == RunnerState::Ready;
    i.num_parallel = r->num_parallel;
    i.parallel_source = r->parallel_source;
    i.num_ctx = r->num_ctx;
    i.weights_bytes = r->weights_bytes;
    i.size_bytes = r->size_bytes;
    i.in_flight = r->in_flight;
    i.running = std::min(r->in_flight, r->num_parallel);
    i.queued = std::max(0, r->in_flight - r->num_parallel);
    if (r->expires)
      i.expires_at = system_now + std::chrono::duration_cast<std::chrono::system_clock::duration>(*r->expires -
                                                                                                 steady_now);
    out.push_back(std::move(i));
  }
  return out;
}

const SchedConfig& Scheduler::config() const { return core_->cfg; }

std::string Scheduler::set_parallel(const std::string& key, int n, const std::string& source) {
  if (n < 1) fail("num_parallel must be at least 1, got {}", n);
  int port = 0, num_ctx = 0;
  uint64_t runner_id = 0;
  {
    std::lock_guard lk(core_->mu);
    auto it = core_->by_key.find(key);
    if (it == core_->by_key.end() || it->second->state != RunnerState::Ready)
      throw NotLoadedError(fmt::format("model '{}' is not loaded (load it first, e.g. with an empty prompt)", key));
    const Runner& r = *it->second;
    if (r.parallel_source == "forced-1" && n > 1)
      fail("model architecture does not currently support parallel requests: {} stays at 1", key);
    port = r.port;
    num_ctx = r.num_ctx;
    runner_id = r.id;
  }
  // The HTTP call without the lock: the runner answers within a step at most.
  const std::string err = post_parallel(port, n, std::chrono::seconds(10));
  if (!err.empty()) fail("{}", err);
  int old = 0, pool_ctx = 0;
  {
    std::lock_guard lk(core_->mu);
    auto it = core_->by_key.find(key);
    if (it == core_->by_key.end() || it->second->id != runner_id)
      throw NotLoadedError(fmt::format("model '{}' was unloaded while its limit changed", key));
    Runner& r = *it->second;
    old = r.num_parallel;
    pool_ctx = r.pool_ctx;
    r.num_parallel = n;
    r.parallel_source = source;
    if (source == "admin") core_->admin_parallel[key] = n;
    core_->cv.notify_all();
    if (old != n) core_->cfg.log(fmt::format("parallel {} -> {} for {} ({})", old, n, key, source));
  }
  if (static_cast<int64_t>(n) * num_ctx > pool_ctx)
    return fmt::format("the KV pool holds {} tokens: {} sequences of up to {} tokens do not all fit at once, "
                       "so long ones will be preempted and recomputed",
                       pool_ctx, n, num_ctx);
  return "";
}

void Scheduler::clear_parallel_override(const std::string& key) {
  std::lock_guard lk(core_->mu);
  core_->admin_parallel.erase(key);
}

}  // namespace pl::sched
