// Proxying a generation to a runner: status first, then NDJSON pieces.
#include <cmath>

#include "core/error.h"
#include "server/server_impl.h"

namespace pl::server {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// The runner's error body {"error": "..."} or the raw text.
std::string error_text(const std::string& body) {
  try {
    json j = json::parse(body);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"].get<std::string>();
  } catch (const json::exception&) {
  }
  return body.empty() ? "no details" : body;
}

}  // namespace

Generation::Generation(std::unique_ptr<sched::Lease> lease, const std::string& path, const json& body,
                       Clock::time_point t_arrival, Metrics* metrics)
    : lease_(std::move(lease)),
      call_(lease_->port(), path, dump_json(body)),
      t_arrival_(t_arrival),
      timer_(metrics, lease_->key(), t_arrival) {
  const int status = call_.status();
  if (status == 200) return;
  if (status == 0) throw HttpError(500, lost_runner_message(*lease_, call_.transport_error()));
  throw HttpError(status == 503 ? 503 : status >= 500 ? 500 : 400, error_text(call_.body()));
}

std::string lost_runner_message(const sched::Lease& lease, const std::string& transport_error) {
  std::string why = lease.runner_exit_reason();
  if (!why.empty()) return why;
  return "lost the connection to the model runner" + (transport_error.empty() ? std::string() : ": " + transport_error);
}

RunnerReply post_to_runner(const sched::Lease& lease, const std::string& path, const json& body) {
  RunnerReply r = runner_post(lease.port(), path, dump_json(body));
  if (r.status == 0) throw HttpError(500, lost_runner_message(lease, r.error));
  return r;
}

bool Generation::next(Piece& out, std::chrono::milliseconds timeout) {
  if (finished_) {
    out = Piece{Piece::Kind::Error, "", 0, "", nullptr, "the generation has already ended"};
    return true;
  }
  std::string line;
  for (;;) {
    switch (call_.next_line(line, timeout)) {
      case RunnerCall::Next::Timeout:
        return false;
      case RunnerCall::Next::End:
        finished_ = true;
        out = Piece{Piece::Kind::Error, "", 0, "", nullptr, lost_runner_message(*lease_, call_.transport_error())};
        return true;
      case RunnerCall::Next::Line:
        break;
    }
    if (line.empty()) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception&) {
      finished_ = true;
      out = Piece{Piece::Kind::Error, "", 0, "", nullptr, "the model runner sent a malformed line"};
      return true;
    }
    out = Piece{};
    if (j.contains("error")) {
      finished_ = true;
      out.kind = Piece::Kind::Error;
      out.error = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
      return true;
    }
    out.content = j.value("content", std::string());
    if (j.contains("tokens") && j["tokens"].is_array()) {
      out.n_tokens = static_cast<int>(j["tokens"].size());
      for (const json& id : j["tokens"]) generated_ids_.push_back(id.get<int32_t>());
    }
    timer_.on_tokens(out.n_tokens, Clock::now());  // before the skip below: those tokens count too
    if (j.value("stop", false)) {
      finished_ = true;
      out.kind = Piece::Kind::Done;
      out.done_reason = j.value("done_reason", std::string("stop"));
      out.timings = j.value("timings", json::object());
      timer_.on_done(out.timings.value("queue_ms", 0.0), Clock::now());
      return true;
    }
    if (out.content.empty()) continue;  // nothing a client could see (a partial UTF-8 character)
    out.kind = Piece::Kind::Text;
    return true;
  }
}

json runner_body(const RenderedPrompt& prompt, const ResolvedOptions& opt, const json& format) {
  json b = opt.runner;
  b["prompt"] = prompt.text;
  b["add_special"] = prompt.add_special;
  b["stream"] = true;
  b["truncate"] = true;
  if (opt.num_ctx > 0) b["n_ctx"] = opt.num_ctx;
  if (!format.is_null()) b["format"] = format;
  return b;
}

json ollama_stats(const Generation& g, const Piece& done) {
  const json& t = done.timings;
  auto ns = [](double ms) { return static_cast<int64_t>(ms * 1e6); };
  const double total_ms = std::chrono::duration<double, std::milli>(Clock::now() - g.t_arrival()).count();
  return json{{"total_duration", ns(total_ms)},
              {"load_duration", ns(g.load_ms())},
              {"prompt_eval_count", t.value("prompt_n", 0)},
              {"prompt_eval_duration", ns(t.value("prompt_ms", 0.0))},
              {"eval_count", t.value("predicted_n", 0)},
              {"eval_duration", ns(t.value("predicted_ms", 0.0))}};
}

void drain(Generation& gen, const std::function<void(const Piece&)>& on_piece) {
  // Nothing is written before the end, so a client that hangs up is only seen
  // on its socket: looked at every 100 ms, it cancels the runner's sequence.
  constexpr auto kCheckEvery = 100ms;
  auto next_check = Clock::now() + kCheckEvery;
  Piece p;
  for (;;) {
    const bool got = gen.next(p, kCheckEvery);
    if (Clock::now() >= next_check) {
      if (http::client_disconnected()) {
        gen.cancel();
        throw HttpError(499, "the client closed the connection");
      }
      next_check = Clock::now() + kCheckEvery;
    }
    if (!got) continue;
    if (p.kind == Piece::Kind::Error) throw HttpError(500, p.error);
    on_piece(p);
    if (p.kind == Piece::Kind::Done) return;
  }
}

void stream_response(httplib::Response& res, const char* content_type, std::shared_ptr<Generation> gen,
                     std::function<std::string(const Piece&)> format, std::string trailer) {
  res.status = 200;
  auto ended = std::make_shared<bool>(false);
  res.set_chunked_content_provider(
      content_type,
      [gen, format = std::move(format), trailer = std::move(trailer), ended](size_t, httplib::DataSink& sink) {
        if (*ended) {
          sink.done();
          return true;
        }
        Piece p;
        if (!gen->next(p, 100ms)) {
          // The client went away before anything was written to it (its request
          // waits behind others, or in a long prefill): httplib's is_writable()
          // does not see a closed peer, the socket does.
          if (!sink.is_writable() || http::client_disconnected()) {
            gen->cancel();
            return false;
          }
          return true;
        }
        std::string out = format(p);
        const bool last = p.kind != Piece::Kind::Text;
        if (last) out += trailer;
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          gen->cancel();
          return false;
        }
        if (last) {
          *ended = true;
          sink.done();
        }
        return true;
      },
      [gen](bool) { gen->cancel(); });
}

EmbedResult run_embeddings(sched::Lease& lease, const std::vector<std::string>& inputs, int num_ctx, bool truncate) {
  json body{{"content", inputs}, {"truncate", truncate}, {"n_ctx", num_ctx}};
  RunnerReply r = post_to_runner(lease, "/embedding", body);
  if (r.status != 200) throw HttpError(r.status >= 500 ? 500 : 400, error_text(r.body));
  json j = json::parse(r.body);
  EmbedResult out;
  for (auto& v : j.at("embeddings")) out.vectors.push_back(v.get<std::vector<float>>());
  out.n_prompt = j.value("prompt_n", 0);
  return out;
}

std::vector<float> normalized(const std::vector<float>& v) {
  double ss = 0;
  for (float x : v) ss += static_cast<double>(x) * x;
  const double norm = std::sqrt(ss);
  std::vector<float> out(v);
  if (norm > 0)
    for (float& x : out) x = static_cast<float>(x / norm);
  return out;
}

}  // namespace pl::server
