#include "runner/completion_stream.h"

#include <nlohmann/json.hpp>

#include "runner/log.h"

namespace pl::runner {

using nlohmann::json;

json timings_json(const Timings& t) {
  return json{{"prompt_n", t.n_prompt},   {"cached_n", t.n_cached},        {"prompt_ms", t.prompt_ms},
              {"predicted_n", t.n_generated}, {"predicted_ms", t.gen_ms}, {"queue_ms", t.queue_ms}};
}

CompletionStream::CompletionStream(std::unique_ptr<Request> req, bool stream)
    : req_(std::move(req)), stream_(stream), t_start_(std::chrono::steady_clock::now()) {}

CompletionStream::~CompletionStream() {
  if (!finished_) abandon("response dropped");
}

void CompletionStream::abandon(std::string_view why) {
  if (finished_ || !req_) return;
  finished_ = true;
  const uint64_t id = req_->id();
  req_.reset();  // cancels
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_start_).count();
  log_info("request id={} cancelled ({}) after {} generated tokens, {:.1f} ms", id, why, n_generated_, ms);
}

void CompletionStream::on_event(Event& e, std::string& out) {
  n_generated_ += static_cast<int>(e.tokens.size());
  if (!e.done) {
    if (stream_) {
      out += dump_json(json{{"content", e.text}, {"tokens", e.tokens}, {"stop", false}});
      out += '\n';
    } else {
      content_ += e.text;
      tokens_.insert(tokens_.end(), e.tokens.begin(), e.tokens.end());
    }
    return;
  }
  finished_ = true;
  const Timings& t = e.timings;
  const double total_ms = t.queue_ms + t.prompt_ms + t.gen_ms;
  if (e.reason == FinishReason::Stop || e.reason == FinishReason::Length) {
    json final{{"stop", true}, {"done_reason", finish_reason_name(e.reason)}, {"timings", timings_json(t)}};
    if (stream_) {
      // Text the engine held back until the end (a partial character, a possible stop-string start).
      if (!e.text.empty() || !e.tokens.empty()) {
        out += dump_json(json{{"content", e.text}, {"tokens", e.tokens}, {"stop", false}});
        out += '\n';
      }
      final["content"] = "";
    } else {
      content_ += e.text;
      tokens_.insert(tokens_.end(), e.tokens.begin(), e.tokens.end());
      final["content"] = std::move(content_);
      final["tokens"] = std::move(tokens_);
    }
    out += dump_json(final);
    out += '\n';
  } else {
    std::string error = e.error.empty() ? std::string("the request was ") + std::string(finish_reason_name(e.reason))
                                        : e.error;
    out += dump_json(json{{"error", error}});
    out += '\n';
  }
  log_info("request id={} prompt={} cached={} generated={} queue_ms={:.1f} prompt_ms={:.1f} gen_ms={:.1f} "
           "total_ms={:.1f} reason={}{}",
           req_->id(), t.n_prompt, t.n_cached, t.n_generated, t.queue_ms, t.prompt_ms, t.gen_ms, total_ms,
           finish_reason_name(e.reason), e.error.empty() ? "" : " error=\"" + e.error + "\"");
}

std::string CompletionStream::poll(std::chrono::milliseconds wait) {
  std::string out;
  if (finished_ || !req_) return out;
  try {
    Event e;
    if (!req_->next(e, wait)) return out;
    on_event(e, out);
    // Coalesce whatever else is already queued into one write.
    while (!finished_ && req_->next(e, std::chrono::milliseconds(0))) on_event(e, out);
  } catch (const std::exception& ex) {
    // Only an allocation failure or a JSON bug can land here; end the response rather than the process.
    finished_ = true;
    out += dump_json(json{{"error", std::string("internal error: ") + ex.what()}});
    out += '\n';
  }
  return out;
}

}  // namespace pl::runner
