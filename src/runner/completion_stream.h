// One /completion request from the engine's events to the bytes the client
// gets: NDJSON lines when streaming, one JSON object otherwise.
//
//   stream:     {"content": "...", "tokens": [ids], "stop": false}        per event with text or tokens
//               {"content": "", "stop": true, "done_reason": "stop"|"length", "timings": {...}}   last
//   non-stream: {"content": all, "tokens": all, "stop": true, "done_reason": ..., "timings": {...}}
//   failure after the request was accepted: {"error": "..."} as the last line (or the whole body).
//
// timings: prompt_n (prompt tokens, cached ones included), cached_n (of them
// served from the prefix cache), prompt_ms, predicted_n, predicted_ms, queue_ms.
//
// It owns the engine's Request handle: destroying it (the client went away)
// cancels the request and the engine frees its KV blocks at the next step.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "http/json_body.h"

namespace pl::runner {

nlohmann::json timings_json(const Timings& t);
using http::dump_json;

class CompletionStream {
 public:
  CompletionStream(std::unique_ptr<Request> req, bool stream);
  ~CompletionStream();
  CompletionStream(const CompletionStream&) = delete;
  CompletionStream& operator=(const CompletionStream&) = delete;

  // Waits up to `wait` for the next event, then takes whatever else is ready;
  // returns the bytes to send now (possibly none). Never throws.
  std::string poll(std::chrono::milliseconds wait);
  bool finished() const { return finished_; }
  // The client went away (or the server is stopping): cancel now and log it.
  void abandon(std::string_view why);

 private:
  void on_event(Event& e, std::string& out);

  std::unique_ptr<Request> req_;
  bool stream_;
  bool finished_ = false;
  std::string content_;          // non-stream: all text so far
  std::vector<int32_t> tokens_;  // non-stream: all ids so far
  int n_generated_ = 0;
  std::chrono::steady_clock::time_point t_start_;
};

}  // namespace pl::runner
