#include "engine/engine.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "core/error.h"
#include "engine/block_allocator.h"
#include "engine/constrained_sampling.h"
#include "engine/scheduler.h"
#include "engine/stop_matcher.h"
#include "grammar/grammar.h"
#include "kernels/thread_pool.h"
#include "model/model.h"
#include "tokenizer/stream_decoder.h"

namespace pl {

using Clock = std::chrono::steady_clock;

static double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string_view finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::None: return "none";
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Error: return "error";
  }
  return "?";
}

// ---- EventChannel / Request ----

void EventChannel::push(Event e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_one();
}

bool EventChannel::pop(Event& out, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
  out = std::move(events_.front());
  events_.pop_front();
  return true;
}

bool Request::next(Event& out, std::chrono::milliseconds timeout) {
  if (done_) return false;
  if (!ch_->pop(out, timeout)) return false;
  if (out.done) done_ = true;
  return true;
}

void Request::cancel() {
  if (done_ || ch_->cancelled()) return;
  ch_->cancel();
  engine_->wake();
}

// ---- the engine ----

namespace {

// What the engine keeps per request beside the scheduler's Sequence.
struct Job {
  Sequence seq;
  GenerateRequest req;
  std::shared_ptr<EventChannel> ch;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<StreamDecoder> decoder;
  std::unique_ptr<StopMatcher> stops;
  std::optional<grammar::Constraint> constraint;  // structured output: the parse state so far
  std::vector<float> masked_logits;               // [n_vocab] scratch for constrained sampling
  std::vector<double> embedding_sum;  // [n_embd] for embedding requests
  int n_generated = 0;
  bool prompt_done = false;
};

}  // namespace

struct Engine::Impl {
  const Model& model;
  const Tokenizer& tok;
  EngineConfig cfg;
  Engine* owner;

  ThreadPool pool;
  KvStore kv;
  BlockAllocator blocks;
  Scheduler sched;
  ForwardState state;
  Batch batch;
  std::vector<float> logits;  // [n_batch, n_vocab]
  std::vector<float> hidden;  // [n_batch, n_embd]

  // Inbox: the one hand-off from request threads to the engine thread.
  std::mutex inbox_mu;
  std::condition_variable inbox_cv;
  std::vector<std::unique_ptr<Job>> inbox;
  bool stop = false;
  bool woken = false;

  std::map<uint64_t, std::unique_ptr<Job>> jobs;  // engine thread only
  std::vector<std::pair<std::shared_ptr<EventChannel>, Event>> done_events;  // final events of this step

  // The vocabulary as the grammar sees it: built on the first constrained
  // request (a walk over every token), then shared by all of them.
  std::once_flag token_table_once;
  std::shared_ptr<const grammar::TokenTable> token_table;
  const std::shared_ptr<const grammar::TokenTable>& tokens_for_grammar() {
    std::call_once(token_table_once, [this] { token_table = grammar::make_token_table(tok); });
    return token_table;
  }
  std::atomic<uint64_t> next_id{1};

  // Published after each step for stats()/slots().
  mutable std::mutex snap_mu;
  EngineStats snap_stats;
  std::vector<SlotInfo> snap_slots;
  EngineStats totals;  // engine thread only; copied into snap_stats

  std::thread thread;

  Impl(const Model& m, const Tokenizer& t, EngineConfig c, Engine* e)
      : model(m),
        tok(t),
        cfg(c),
        owner(e),
        pool(c.n_threads),
        kv(KvStoreConfig::for_context(m.config(), c.n_ctx, c.block_size)),
        blocks(kv.config().n_blocks, c.block_size),
        sched(blocks, c.n_batch, c.n_parallel, c.prefix_cache),
        state(m.config(), c.n_batch, c.n_threads),
        logits(static_cast<size_t>(c.n_batch) * m.config().n_vocab),
        hidden(static_cast<size_t>(c.n_batch) * m.config().n_embd) {
    totals.kv_blocks_total = blocks.n_blocks();
    totals.kv_block_size = c.block_size;
    publish();
    thread = std::thread([this] { loop(); });
  }

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(inbox_mu);
      stop = true;
    }
    inbox_cv.notify_one();
    thread.join();
  }

  void finish(Job& job, FinishReason reason, std::string error = {}) {
    Event e;
    if (job.decoder && reason != FinishReason::Cancelled && reason != FinishReason::Error) {
      // Text still held: a partial character, or a suffix that might have begun a stop string.
      e.text = job.stops->push(job.decoder->flush());
      if (!job.stops->stopped()) e.text += job.stops->flush();
    }
    e.done = true;
    e.reason = reason;
    e.error = std::move(error);
    const Sequence& s = job.seq;
    Timings& t = e.timings;
    t.n_prompt = s.n_prompt;
    t.n_cached = s.n_prefix_hit;
    t.n_generated = job.n_generated;
    auto now = Clock::now();
    const bool admitted = s.t_admitted != Clock::time_point{};
    t.queue_ms = ms_between(s.t_arrival, admitted ? s.t_admitted : now);
    if (job.prompt_done) {
      t.prompt_ms = ms_between(s.t_admitted, s.t_prompt_done);
      t.gen_ms = ms_between(s.t_prompt_done, s.t_last_token);
    }
    if (job.req.embedding && reason == FinishReason::Stop) {
      e.embedding.resize(job.embedding_sum.size());
      for (size_t i = 0; i < e.embedding.size(); ++i)
        e.embedding[i] = static_cast<float>(job.embedding_sum[i] / std::max(1, s.n_prompt));
    }
    totals.finished[std::string(finish_reason_name(reason))]++;
    sched.remove(&job.seq);
    // Delivered after the step's publish(): a client that has its final event
    // then never reads stats that still count its sequence as running.
    done_events.emplace_back(job.ch, std::move(e));
  }

  void deliver_done() {
    for (auto& [ch, e] : done_events) ch->push(std::move(e));
    done_events.clear();
  }

  void take_inbox() {
    std::vector<std::unique_ptr<Job>> incoming;
    {
      std::unique_lock<std::mutex> lock(inbox_mu);
      const bool idle = sched.running().empty() && sched.waiting().empty();
      if (idle) {
        inbox_cv.wait(lock, [&] { return stop || woken || !inbox.empty(); });
        gather_burst(lock);
      }
      woken = false;
      incoming.swap(inbox);
    }
    for (auto& job : incoming) {
      sched.add(&job->seq);
      const uint64_t id = job->seq.id;
      jobs.emplace(id, std::move(job));
    }
  }

  // Clients that send at the same moment arrive spread over a few ms (a
  // client's own scheduling, its interpreter's lock). An idle engine that
  // started on the first arrival would prefill it alone and make the others
  // wait that whole step (hundreds of ms for a long prompt), then prefill them
  // in a second one: the burst's TTFT grows by a step and the early sequences
  // run a step ahead of the rest for as long as they live. So an idle engine
  // keeps taking arrivals while they come within burst_gap_ms of each other,
  // for at most 4 gaps in all, and stops at once when a full batch of
  // sequences waits. A lone request pays one gap.
  void gather_burst(std::unique_lock<std::mutex>& lock) {
    if (cfg.burst_gap_ms <= 0) return;
    const auto gap = std::chrono::microseconds(static_cast<int64_t>(cfg.burst_gap_ms * 1000));
    const auto deadline = Clock::now() + 4 * gap;
    while (!stop && !inbox.empty() && static_cast<int>(inbox.size()) < owner->parallel_.load()) {
      const size_t n = inbox.size();
      const auto until = std::min<Clock::time_point>(deadline, Clock::now() + gap);
      if (!inbox_cv.wait_until(lock, until, [&] { return stop || inbox.size() > n; })) return;
    }
  }

  void drop_cancelled() {
    for (auto it = jobs.begin(); it != jobs.end();) {
      if (it->second->ch->cancelled()) {
        finish(*it->second, FinishReason::Cancelled);
        it = jobs.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Samples the next token of a sequence whose logits were computed; returns false when it finished.
  bool advance(Job& job, const float* row, Clock::time_point now) {
    Sequence& s = job.seq;
    if (!job.prompt_done) {
      job.prompt_done = true;
      s.t_prompt_done = now;
    }
    if (job.req.n_predict >= 0 && job.n_generated >= job.req.n_predict) {  // n_predict 0: the prompt only
      s.t_last_token = now;
      finish(job, FinishReason::Length);
      return false;
    }
    const int32_t id =
        job.constraint ? sample_constrained(*job.sampler, *job.constraint, row, s.tokens, job.masked_logits)
                       : job.sampler->sample(row, s.tokens);
    s.t_last_token = now;
    if (id < 0) {
      finish(job, FinishReason::Error, "structured output: the format allows no token to continue the text");
      return false;
    }
    if (job.constraint) job.constraint->accept(id);
    if (tok.is_eog(id)) {
      finish(job, FinishReason::Stop);
      return false;
    }
    s.tokens.push_back(id);
    ++job.n_generated;
    ++totals.generated_tokens;
    Event e;
    e.tokens.push_back(id);
    e.text = job.stops->push(job.decoder->push(id));
    const bool stopped = job.stops->stopped();
    if (!e.text.empty() || !stopped) job.ch->push(std::move(e));
    // A complete structured value ends the sequence here: nothing may follow,
    // so there is no need for another forward pass to sample an end token.
    if (stopped || (job.constraint && job.constraint->must_end())) {
      finish(job, FinishReason::Stop);
      return false;
    }
    if ((job.req.n_predict >= 0 && job.n_generated >= job.req.n_predict) ||
        static_cast<int>(s.tokens.size()) >= s.n_ctx_max) {
      finish(job, FinishReason::Length);
      return false;
    }
    return true;
  }

  void step() {
    sched.set_parallel(owner->parallel_.load());
    StepPlan plan = sched.schedule();
    for (Sequence* s : plan.failed) {
      Job& job = *jobs.at(s->id);
      finish(job, FinishReason::Error,
             fmt::format("the KV cache ({} tokens) is too small for this request ({} tokens)", cfg.n_ctx,
                         s->tokens.size()));
      jobs.erase(s->id);
    }
    // A preempted embedding sequence recomputes its whole prompt: start its sum again.
    for (Sequence* s : plan.preempted) {
      Job& job = *jobs.at(s->id);
      if (job.req.embedding) std::fill(job.embedding_sum.begin(), job.embedding_sum.end(), 0.0);
    }
    if (plan.items.empty()) return;

    const auto t0 = Clock::now();
    batch.clear();
    bool any_embedding = false;
    for (const StepPlan::Item& item : plan.items) {
      Sequence& s = *item.seq;
      if (s.t_admitted == Clock::time_point{}) s.t_admitted = t0;
      batch.add_seq(std::span<const int32_t>(s.tokens).subspan(s.n_computed, item.n_tokens), s.n_computed, s.blocks,
                    item.want_logits);
      any_embedding |= s.embedding;
      if (s.n_computed < s.n_prompt) totals.prompt_tokens += std::min(item.n_tokens, s.n_prompt - s.n_computed);
    }
    forward(model, batch, kv, state, pool, logits.data(), any_embedding ? hidden.data() : nullptr);
    sched.commit(plan);
    const auto t1 = Clock::now();

    int row = 0;
    const int V = model.config().n_vocab, E = model.config().n_embd;
    for (size_t i = 0; i < plan.items.size(); ++i) {
      const StepPlan::Item& item = plan.items[i];
      Job& job = *jobs.at(item.seq->id);
      bool alive = true;
      if (job.req.embedding) {
        const BatchSeq& bs = batch.seqs[i];
        for (int32_t t = bs.tok_begin; t < bs.tok_end; ++t)
          for (int d = 0; d < E; ++d) job.embedding_sum[d] += hidden[static_cast<size_t>(t) * E + d];
        if (job.seq.n_computed == static_cast<int>(job.seq.tokens.size())) {
          job.prompt_done = true;
          job.seq.t_prompt_done = job.seq.t_last_token = t1;
          finish(job, FinishReason::Stop);
          alive = false;
        }
      } else if (item.want_logits) {
        alive = advance(job, logits.data() + static_cast<size_t>(row) * V, t1);
        ++row;
      }
      if (!alive) jobs.erase(item.seq->id);
    }
    totals.steps++;
    totals.last_step_ms = ms_between(t0, t1);
    totals.step_ms_total += totals.last_step_ms;
  }

  void publish() {
    EngineStats s = totals;
    s.n_parallel = owner->parallel_.load();
    s.n_running = static_cast<int>(sched.running().size());
    s.n_waiting = static_cast<int>(sched.waiting().size());
    s.kv_blocks_used = blocks.n_held();
    s.prefix_queries = blocks.n_prefix_queries();
    s.prefix_query_tokens = blocks.n_prefix_query_blocks() * cfg.block_size;
    s.prefix_hit_tokens = blocks.n_prefix_hit_blocks() * cfg.block_size;
    s.preemptions = sched.n_preemptions();
    std::vector<SlotInfo> slots;
    const auto now = Clock::now();
    auto info = [&](const Sequence* q, const char* st) {
      const Job& job = *jobs.at(q->id);
      slots.push_back({q->id, st, q->n_prompt, q->n_computed, job.n_generated, ms_between(q->t_arrival, now)});
    };
    for (const Sequence* q : sched.running()) info(q, q->n_pending() > 1 ? "prefill" : "decode");
    for (const Sequence* q : sched.waiting()) info(q, "waiting");
    std::lock_guard<std::mutex> lock(snap_mu);
    snap_stats = std::move(s);
    snap_slots = std::move(slots);
  }

  void loop() {
    for (;;) {
      take_inbox();
      {
        std::lock_guard<std::mutex> lock(inbox_mu);
        if (stop) break;
      }
      drop_cancelled();
      try {
        step();
      } catch (const std::exception& e) {
        // A failed forward pass fails the requests in it; the engine goes on.
        std::vector<uint64_t> ids;
        for (const Sequence* s : sched.running()) ids.push_back(s->id);
        for (uint64_t id : ids) {
          finish(*jobs.at(id), FinishReason::Error, e.what());
          jobs.erase(id);
        }
      }
      publish();
      deliver_done();
    }
    for (auto& [id, job] : jobs) finish(*job, FinishReason::Cancelled, "the engine is shutting down");
    jobs.clear();
    deliver_done();
    std::lock_guard<std::mutex> lock(inbox_mu);
    for (auto& job : inbox) {
      Event e;
      e.done = true;
      e.reason = FinishReason::Cancelled;
      e.error = "the engine is shutting down";
      job->ch->push(std::move(e));
    }
    inbox.clear();
  }
};

Engine::Engine(const Model& model, const Tokenizer& tok, EngineConfig cfg) : cfg_(cfg), parallel_(cfg.n_parallel) {
  if (cfg_.n_parallel <= 0) fail("parallel must be at least 1, got {}", cfg_.n_parallel);
  if (cfg_.n_ctx <= 0) fail("ctx-size must be positive, got {}", cfg_.n_ctx);
  if (cfg_.n_batch <= 0) fail("batch-size must be positive, got {}", cfg_.n_batch);
  if (cfg_.block_size <= 0) fail("block size must be positive");
  if (cfg_.n_threads <= 0) cfg_.n_threads = default_thread_count();
  if (cfg_.n_ctx_seq <= 0) cfg_.n_ctx_seq = std::max(1, cfg_.n_ctx / cfg_.n_parallel);
  cfg_.n_ctx_seq = std::min(cfg_.n_ctx_seq, cfg_.n_ctx);
  impl_ = std::make_unique<Impl>(model, tok, cfg_, this);
}

Engine::~Engine() = default;

std::unique_ptr<Request> Engine::submit(GenerateRequest req) {
  const ModelConfig& c = impl_->model.config();
  if (req.prompt.empty()) fail("the prompt is empty");
  for (int32_t id : req.prompt)
    if (id < 0 || id >= c.n_vocab) fail("token id {} is outside the vocabulary (0..{})", id, c.n_vocab - 1);
  const int n_ctx = req.n_ctx > 0 ? std::min(req.n_ctx, cfg_.n_ctx_seq) : cfg_.n_ctx_seq;
  // A generation needs room for at least one new token; an embedding does not.
  const int max_prompt = req.embedding ? n_ctx : n_ctx - 1;
  if (static_cast<int>(req.prompt.size()) > max_prompt) {
    if (!req.truncate || max_prompt < 1)
      fail("the prompt has {} tokens, more than the context allows ({})", req.prompt.size(), max_prompt);
    if (req.embedding) {
      req.prompt.resize(static_cast<size_t>(max_prompt));
    } else {
      // Keep the first token (BOS, or the start of the instructions) and the
      // most recent tokens, leaving half the context to generate into.
      const size_t keep_tail = static_cast<size_t>(std::max(1, n_ctx / 2 - 1));
      std::vector<int32_t> p;
      p.reserve(keep_tail + 1);
      p.push_back(req.prompt.front());
      p.insert(p.end(), req.prompt.end() - static_cast<std::ptrdiff_t>(keep_tail), req.prompt.end());
      req.prompt = std::move(p);
    }
  }
  req.sampling.validate();
  if (req.format && req.embedding) fail("a format (structured output) does not apply to an embedding request");

  auto job = std::make_unique<Job>();
  const uint64_t id = impl_->next_id.fetch_add(1);
  Sequence& s = job->seq;
  s.id = id;
  s.tokens = req.prompt;
  s.n_prompt = static_cast<int>(req.prompt.size());
  s.n_ctx_max = n_ctx;
  s.embedding = req.embedding;
  s.t_arrival = Clock::now();
  job->ch = std::make_shared<EventChannel>();
  if (req.embedding) {
    job->embedding_sum.assign(c.n_embd, 0.0);
  } else {
    job->sampler = std::make_unique<Sampler>(req.sampling, c.n_vocab);
    job->decoder = std::make_unique<StreamDecoder>(impl_->tok);
    job->stops = std::make_unique<StopMatcher>(req.stop);
    if (req.format) {
      job->constraint.emplace(req.format, impl_->tokens_for_grammar());
      job->masked_logits.resize(c.n_vocab);
    }
  }
  job->req = std::move(req);
  auto handle = std::make_unique<Request>(id, job->ch, this);
  {
    std::lock_guard<std::mutex> lock(impl_->inbox_mu);
    impl_->inbox.push_back(std::move(job));
  }
  impl_->inbox_cv.notify_one();
  return handle;
}

void Engine::set_parallel(int n) {
  if (n <= 0) fail("parallel must be at least 1, got {}", n);
  parallel_.store(n);
  wake();
}

void Engine::wake() {
  {
    std::lock_guard<std::mutex> lock(impl_->inbox_mu);
    impl_->woken = true;
  }
  impl_->inbox_cv.notify_one();
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(impl_->snap_mu);
  return impl_->snap_stats;
}

std::vector<SlotInfo> Engine::slots() const {
  std::lock_guard<std::mutex> lock(impl_->snap_mu);
  return impl_->snap_slots;
}

}  // namespace pl
