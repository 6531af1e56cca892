// The runner scheduler: one `parallama runner` child process per loaded model.
//
// The server asks for a model with acquire(); it gets a Lease (RAII) naming the
// runner's loopback port, loading the model first when needed. While any lease
// is held the runner stays; when the last one drops, its keep-alive timer starts
// (OLLAMA_KEEP_ALIVE, default 5m, or the request's keep_alive) and the runner is
// stopped when it runs out. A model that needs memory evicts idle runners (the
// least recently used first); OLLAMA_MAX_LOADED_MODELS caps the count.
//
// Queue bound (OLLAMA_MAX_QUEUE, default 512): a request is "waiting" while it
// waits for a load, or while its runner already has `num_parallel` requests in
// flight. acquire() counts them all, for loaded models too, and throws BusyError
// beyond the bound.
//
// Parallelism: OLLAMA_NUM_PARALLEL, or a per-model value, or, when neither is
// set, a memory-aware default: 4 if weights + KV for 4 x num_ctx fit in
// (available memory - reserve), else 1, logged with the numbers. A model whose
// architecture cannot batch gets 1 with the log line
// "model architecture does not currently support parallel requests".
//
// Every start is logged as
//   starting llama server cmd="<exe> runner --model <gguf> --ctx-size <num_ctx*parallel> --batch-size 512 --threads T --parallel N --port P"
// A runner that dies (crash, kill -9) is noticed by the monitor thread (it
// polls waitpid every 50 ms, and also runs the keep-alive timers and the
// SIGTERM -> SIGKILL escalation): it is dropped from the table (its in-flight
// requests fail at the proxy with the runner's exit status) and the next
// acquire() starts a new one. The monitor also relays each runner's stderr to
// the server's, keeping its last error line: a runner that fails ends as
// "llama runner process has terminated: <that line>" (its exit status when it
// said nothing), the message the requests get, as in Ollama.
//
// Memory: a runner costs weights (the GGUF's size) + KV (num_ctx x parallel x
// n_layer x 2 x n_head_kv x head_dim x 2 bytes, fp16) + compute (fp32 scratch
// for n_batch tokens incl. logits). Every runner not yet exited counts against
// (available_memory() - memory_reserve), so with the live MemAvailable default
// the KV of loaded runners is counted twice (conservative).
//
// Threads: acquire() loads on the calling thread (polling the runner's /health)
// and may block up to load_timeout; runner_exit_reason() up to 1 s; the rest
// return promptly. The destructor stops every runner (bounded: SIGKILL after
// 5 s, gives up after 8 s) and joins the monitor; acquire() must not run
// concurrently with it. Leases should go first; one that outlives its
// Scheduler is harmless (its end is a no-op).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace pl::sched {

// The server answers 503 with this message.
class BusyError : public Error {
 public:
  using Error::Error;
};

// The model is not loaded (set_parallel): the server answers 404.
class NotLoadedError : public Error {
 public:
  using Error::Error;
};

using Millis = std::chrono::milliseconds;

struct SchedConfig {
  std::filesystem::path runner_exe;  // the parallama binary (started as `<exe> runner ...`)
  std::optional<int> num_parallel;   // OLLAMA_NUM_PARALLEL; none: memory-aware default
  bool auto_parallel = false;        // OLLAMA_NUM_PARALLEL=auto: start at the default, source "auto" (the tuner's)
  int max_loaded_models = 3;         // OLLAMA_MAX_LOADED_MODELS (0 in the env means the default)
  int max_queue = 512;               // OLLAMA_MAX_QUEUE
  Millis keep_alive{5 * 60 * 1000};  // OLLAMA_KEEP_ALIVE; negative: forever
  int default_num_ctx = 4096;        // OLLAMA_CONTEXT_LENGTH
  int n_threads = 0;                 // PARALLAMA_THREADS; 0: the runner's default (physical cores)
  int n_batch = 512;
  Millis load_timeout{5 * 60 * 1000};  // OLLAMA_LOAD_TIMEOUT
  uint64_t memory_reserve = 1ull << 30;  // PARALLAMA_MEMORY_RESERVE (bytes) kept free for the OS
  // Bytes available for models; default reads MemAvailable from /proc/meminfo,
  // PARALLAMA_AVAILABLE_MEMORY (bytes) overrides it (tests inject the figure).
  std::function<uint64_t()> available_memory;
  // One line per event; default: "<RFC3339 UTC> sched: <msg>" on stderr. Called
  // with the scheduler's lock held: it must not call back into the Scheduler.
  std::function<void(const std::string&)> log;

  // Reads the variables above; throws pl::Error naming the variable for a bad value
  // ("OLLAMA_MAX_QUEUE must be a positive integer, got 'x'"). Blank means unset;
  // OLLAMA_NUM_PARALLEL=0 and OLLAMA_MAX_LOADED_MODELS=0 mean the default (as in
  // Ollama); OLLAMA_NUM_PARALLEL=auto is an error until the tuner exists (issue #7);
  // byte counts take a unit (1073741824, 1GiB, 512MB). runner_exe is /proc/self/exe.
  static SchedConfig from_env();
};

// Parses Ollama's durations: "5m", "1h30m", "10s", "300ms", a bare number of
// seconds ("300"), "0" (now), a negative value (forever). Throws pl::Error.
Millis parse_duration(std::string_view s);

struct ModelRequest {
  std::string key;                 // the model's full name: one runner per key
  std::filesystem::path gguf;      // its weights
  int num_ctx = 0;                 // per-sequence context; 0: default_num_ctx (clamped to the model's context length)
  std::optional<int> num_parallel; // per-model setting (Modelfile PARAMETER num_parallel)
  std::optional<Millis> keep_alive;  // this request's keep_alive
};

struct RunnerInfo {  // one loaded (or loading) model, for /api/ps and /metrics
  std::string key;
  std::filesystem::path gguf;
  int pid = 0;
  int port = 0;
  bool ready = false;                // false while loading
  int num_parallel = 0;
  std::string parallel_source;       // "env" | "default" | "modelfile" | "admin" | "auto" | "forced-1"
  int num_ctx = 0;                   // per sequence
  uint64_t weights_bytes = 0;
  uint64_t size_bytes = 0;           // memory estimate: weights + KV + compute
  int in_flight = 0;                 // leases held
  int running = 0;                   // min(in_flight, num_parallel)
  int queued = 0;                    // max(0, in_flight - num_parallel)
  std::optional<std::chrono::system_clock::time_point> expires_at;  // none: in use or forever
};

class SchedulerCore;

// Holds a runner for one request. Destroying it ends the request (the runner's
// keep-alive timer starts when the last lease goes).
class Lease {
 public:
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  int port() const { return port_; }
  int num_ctx() const { return num_ctx_; }
  int num_parallel() const { return num_parallel_; }
  double load_ms() const { return load_ms_; }  // how long acquire() waited for a load (0: it was loaded)
  const std::string& key() const { return key_; }
  // The proxy lost the runner: returns why, e.g. "llama runner process has terminated: signal 9 (Killed)"
  // once the reaper has seen the exit (waits up to 1 s for it), or "" if the runner still runs.
  std::string runner_exit_reason() const;

 private:
  friend class SchedulerCore;
  Lease() = default;
  // Weak: a lease that outlives its Scheduler (it should not) is harmless.
  std::weak_ptr<SchedulerCore> core_;
  uint64_t runner_id_ = 0;
  std::string key_;
  int port_ = 0, num_ctx_ = 0, num_parallel_ = 0;
  double load_ms_ = 0;
};

class Scheduler {
 public:
  explicit Scheduler(SchedConfig cfg);
  ~Scheduler();  // stops every runner (SIGTERM, SIGKILL after 5 s)
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Returns a lease on a ready runner for the model, starting one (and evicting
  // idle ones) when needed; a request whose num_ctx exceeds the loaded runner's
  // waits until the runner is idle and reloads it larger (requests arriving
  // meanwhile wait for the new runner), a smaller one is served as it is (no
  // reload thrash); so does a changed gguf path. Applies keep_alive (the
  // request's, else the default). Throws BusyError (queue full), pl::Error:
  // unreadable model ("cannot read model ..."), load failed (the runner's
  // /health error, or "llama runner process has terminated: <the runner's last
  // error line>", else "...: exit status 1"),
  // does not fit in memory even alone, or nothing became idle / loaded within
  // load_timeout.
  std::unique_ptr<Lease> acquire(const ModelRequest& req);

  // keep_alive 0 / `parallama stop`: stops the runner now if idle, else when its
  // last lease goes (new requests are still served until then). False if the
  // model is not loaded.
  bool unload(const std::string& key);
  std::vector<RunnerInfo> ps() const;  // loading and ready runners, by key
  const SchedConfig& config() const;

  // Changes a loaded model's parallel limit live, through its runner's POST
  // /parallel: effective at the runner's next step, nothing in flight is
  // dropped; the queue accounting follows at once. source "admin" is also
  // remembered for the model's next load (until the server restarts); "auto" is
  // the tuner's. Throws NotLoadedError, or pl::Error with the reason the value
  // does not fit (a forced-1 architecture; more sequences than the runner's KV
  // pool has blocks). Returns a warning when the pool cannot hold n full
  // contexts (long sequences will then be preempted and recomputed), else "".
  std::string set_parallel(const std::string& key, int n, const std::string& source);
  // Forgets an admin setting (the next load uses modelfile/env/default again).
  void clear_parallel_override(const std::string& key);

 private:
  std::shared_ptr<SchedulerCore> core_;
};

// The memory-aware default, exposed for tests: 4 if weights + KV(4 x num_ctx)
// + compute fit in `budget`, else 1; `why` gets the numbers. The budget is the
// whole (available - reserve): other loaded models are not subtracted, since
// idle ones can be evicted.
int default_parallel(uint64_t weights_bytes, uint64_t kv_bytes_per_token, int num_ctx, uint64_t budget,
                     std::string* why, uint64_t compute_bytes = 0);

}  // namespace pl::sched
