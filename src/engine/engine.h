// The continuous-batching engine: every running sequence's next tokens go
// into one forward pass per step, on one engine thread.
//
// Threads meet in two places only: the inbox (new requests, with a wake-up),
// and each request's own event channel (tokens out). A Request handle is RAII:
// dropping it cancels the request, and the engine frees its KV blocks at the
// next step. Settings that change at run time (set_parallel) are atomics read
// at the start of a step; stats()/slots() read a snapshot that the engine
// publishes after each step, so they never wait for a forward pass.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/sampler.h"
#include "tokenizer/tokenizer.h"

namespace pl {

class Model;
namespace grammar {
class Format;
}

struct EngineConfig {
  int n_ctx = 4096;      // KV pool size in tokens, shared by all sequences (the runner's --ctx-size)
  int n_ctx_seq = 0;     // most tokens one sequence may hold (0: n_ctx / n_parallel)
  int n_parallel = 1;    // sequences running at once
  int n_batch = 512;     // tokens per forward pass
  int n_threads = 0;     // 0: physical cores
  int block_size = 32;   // tokens per KV block
  bool prefix_cache = true;
  // An idle engine that receives a request keeps gathering arrivals while they
  // come less than this many ms apart (at most 4x this in all, and no longer
  // once a full --parallel's worth waits), so a burst of clients that send
  // together is prefilled in one step. 0: start with the first at once.
  double burst_gap_ms = 8;
};

struct GenerateRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int n_predict = -1;               // -1: until an end-of-generation token or the context is full
  std::vector<std::string> stop;    // stop strings
  bool embedding = false;           // return the mean of the prompt's final hidden states instead
  int n_ctx = 0;                    // this request's context limit (Ollama's num_ctx); 0 or more than
                                    // the engine's n_ctx_seq: n_ctx_seq
  // A prompt that does not fit the context: false -> submit() throws; true ->
  // generation keeps the first token (BOS) and the last half of the context's
  // worth of the rest, as Ollama does; an embedding keeps the beginning.
  bool truncate = false;
  // Structured output (grammar::compile_format): every generated token keeps the
  // text a valid prefix, and the sequence ends ("stop") once the value is
  // complete. Null: unconstrained. Not allowed with embedding.
  std::shared_ptr<const grammar::Format> format;
};

enum class FinishReason { None, Stop, Length, Cancelled, Error };
std::string_view finish_reason_name(FinishReason r);

struct Timings {
  int n_prompt = 0;       // prompt tokens
  int n_cached = 0;       // of which served from the prefix cache
  int n_generated = 0;
  double queue_ms = 0;    // arrival to first scheduled
  double prompt_ms = 0;   // first scheduled to first token (prompt processing)
  double gen_ms = 0;      // first token to last token
};

struct Event {
  std::string text;              // new text: complete UTF-8 characters only
  std::vector<int32_t> tokens;   // the token ids behind it
  bool done = false;
  FinishReason reason = FinishReason::None;
  std::string error;             // reason == Error
  Timings timings;               // when done
  std::vector<float> embedding;  // when done, for embedding requests
};

// Tokens out of the engine for one request.
class EventChannel {
 public:
  void push(Event e);
  // Pops the next event, waiting up to `timeout`; false on timeout.
  bool pop(Event& out, std::chrono::milliseconds timeout);
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  std::atomic<bool> cancelled_{false};
};

class Engine;

// The caller's handle. Destroying it cancels the request if it has not finished.
class Request {
 public:
  Request(uint64_t id, std::shared_ptr<EventChannel> ch, Engine* engine) : id_(id), ch_(std::move(ch)), engine_(engine) {}
  ~Request() { cancel(); }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  uint64_t id() const { return id_; }
  // Next event; false on timeout. After an event with done, there are no more.
  bool next(Event& out, std::chrono::milliseconds timeout = std::chrono::milliseconds(3600000));
  void cancel();

 private:
  uint64_t id_;
  std::shared_ptr<EventChannel> ch_;
  Engine* engine_;
  bool done_ = false;
};

struct EngineStats {
  int n_parallel = 0;
  int n_running = 0;
  int n_waiting = 0;
  int kv_blocks_total = 0;
  int kv_blocks_used = 0;      // held by sequences (cached-but-idle blocks count as free)
  int kv_block_size = 0;
  uint64_t prefix_queries = 0;      // admissions that looked up the prefix cache
  uint64_t prefix_query_tokens = 0; // prompt tokens in full blocks looked up
  uint64_t prefix_hit_tokens = 0;   // of which found cached
  uint64_t prompt_tokens = 0;       // prompt tokens computed (excluding cache hits)
  uint64_t generated_tokens = 0;
  uint64_t steps = 0;
  uint64_t preemptions = 0;
  double last_step_ms = 0;
  double step_ms_total = 0;
  std::map<std::string, uint64_t> finished;  // by finish reason name
};

struct SlotInfo {
  uint64_t id;
  std::string state;  // "waiting" | "prefill" | "decode"
  int n_prompt;
  int n_computed;
  int n_generated;
  double age_ms;
};

class Engine {
 public:
  // The model and tokenizer must outlive the engine. Throws pl::Error for bad settings.
  Engine(const Model& model, const Tokenizer& tok, EngineConfig cfg);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates (empty prompt, prompt longer than the context unless truncate, bad token ids,
  // bad sampling values -> pl::Error) and queues the request.
  std::unique_ptr<Request> submit(GenerateRequest req);
  // Takes effect at the next step: growing admits waiting requests, shrinking
  // admits none until running sequences drain below n; nothing is dropped.
  void set_parallel(int n);
  int parallel() const { return parallel_.load(); }
  const EngineConfig& config() const { return cfg_; }

  EngineStats stats() const;
  std::vector<SlotInfo> slots() const;

  void wake();  // nudges the engine thread (used on cancel)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  EngineConfig cfg_;
  std::atomic<int> parallel_;
};

}  // namespace pl
