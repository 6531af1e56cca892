// Small calls to a runner on the loopback interface: GET /health, POST /parallel.
#pragma once

#include <chrono>
#include <string>

namespace pl::sched {

enum class Health {
  NoAnswer,  // not listening yet (or gone)
  Loading,   // 503
  Ready,     // 200
  Failed,    // 500: the load failed; `error` says why
};

struct HealthReply {
  Health health = Health::NoAnswer;
  std::string error;  // Failed: the runner's "error" field (or its body)
};

HealthReply check_health(int port, std::chrono::milliseconds timeout);

// POST /parallel {"n": n} to a runner: "" on success, else why not (the
// runner's error for a value its KV pool cannot run, or the transport error).
std::string post_parallel(int port, int n, std::chrono::milliseconds timeout);

}  // namespace pl::sched
