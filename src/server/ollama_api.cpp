// Ollama's generation endpoints: /api/generate, /api/chat, /api/embed, /api/embeddings.
#include <cstdint>
#include <limits>

#include "core/error.h"
#include "server/prompt.h"
#include "server/response_format.h"
#include "server/server_impl.h"

namespace pl::server {

using nlohmann::json;

namespace {

void reject_images(const json& body) {
  if (const json* imgs = field(body, "images"); imgs != nullptr && !(imgs->is_array() && imgs->empty()))
    fail("this model does not support images (no vision model is loaded)");
}

// Ollama's "think": true, false or a level ("high", "medium", "low"); whether the request asks for thinking.
bool wants_thinking(const json& body) {
  const json* t = field(body, "think");
  if (t == nullptr) return false;
  if (t->is_boolean()) return t->get<bool>();
  if (t->is_string()) {
    const std::string& level = t->get_ref<const std::string&>();
    if (level == "high" || level == "medium" || level == "low") return true;
    fail("invalid think value: {} (must be \"high\", \"medium\", \"low\", true, or false)", t->dump());
  }
  fail("think must be a boolean or string (\"high\", \"medium\", \"low\", true, or false), got {}", type_of(*t));
}

// Ollama's 400 for thinking asked of a model that cannot think: none can here (see ModelCapabilities).
void check_thinking_supported(bool think, const std::string& requested_name) {
  if (think) fail("{} does not support thinking", json(requested_name).dump());
}

// /api/generate's "context": the token ids an earlier answer returned (absent or null: none).
std::vector<int32_t> parse_context(const json& body) {
  const json* c = field(body, "context");
  if (c == nullptr) return {};
  if (!c->is_array()) fail("field 'context' must be an array of token ids, got {}", type_of(*c));
  std::vector<int32_t> ids;
  for (size_t i = 0; i < c->size(); ++i) {
    const json& id = (*c)[i];
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > std::numeric_limits<int32_t>::max())
      fail("field 'context'[{}] must be a token id (an integer >= 0), got {}", i, id.dump());
    ids.push_back(id.get<int32_t>());
  }
  return ids;
}

// The ids /api/generate sends: an earlier answer's context (which begins with its
// BOS), then the rendered prompt as the runner tokenizes it (with the BOS only
// when there is no context to carry one).
std::vector<int32_t> prompt_ids(const sched::Lease& lease, const RenderedPrompt& text, std::vector<int32_t> ids) {
  const json body{{"content", text.text}, {"add_special", ids.empty() && text.add_special}};
  const RunnerReply r = post_to_runner(lease, "/tokenize", body);
  if (r.status != 200) throw HttpError(500, "the model runner could not tokenize the prompt: " + r.body);
  const json reply = json::parse(r.body);
  for (const json& id : reply.at("tokens")) ids.push_back(id.get<int32_t>());
  return ids;
}

// /api/embed's "dimensions": how many leading values to keep (0: all).
size_t parse_dimensions(const json& body) {
  const json* d = field(body, "dimensions");
  if (d == nullptr) return 0;
  if (!d->is_number_integer() || d->get<int64_t>() <= 0)
    fail("field 'dimensions' must be a positive integer, got {}", d->dump());
  return d->get<size_t>();
}

// Ollama's shortening of a unit vector: its first `dims` values, normalised again
// (0, or at least its size: the whole vector).
std::vector<float> with_dimensions(std::vector<float> unit, size_t dims) {
  if (dims == 0 || dims >= unit.size()) return unit;
  unit.resize(dims);
  return normalized(unit);
}

// Ollama's message.tool_calls from the parsed calls.
json ollama_tool_calls(const chat::ParsedToolCalls& parsed) {
  json calls = json::array();
  for (size_t i = 0; i < parsed.calls.size(); ++i)
    calls.push_back(json{{"function", {{"index", i},
                                       {"name", parsed.calls[i].name},
                                       {"arguments", json::parse(parsed.calls[i].arguments.dump())}}}});
  return calls;
}

// An empty prompt loads the model (keep_alive 0: unloads it) and answers at once.
void load_or_unload(Server::Impl& s, const store::ModelInfo& m, const ResolvedOptions& opt,
                    std::optional<sched::Millis> keep_alive, httplib::Response& res, bool chat) {
  json out{{"model", m.name.display()}, {"created_at", now_rfc3339()}, {"done", true}};
  if (chat)
    out["message"] = json{{"role", "assistant"}, {"content", ""}};
  else
    out["response"] = "";
  if (keep_alive && keep_alive->count() == 0) {
    s.sched->unload(m.name.display());
    out["done_reason"] = "unload";
  } else {
    auto lease = s.acquire(m, opt, keep_alive);
    out["done_reason"] = "load";
  }
  send_json(res, 200, out);
}

// Answers a generation in Ollama's shape: NDJSON chunks or one object;
// `text_fields` gives the text's field ("response", or chat's "message"),
// `done_fields` (optional) more fields for the last object.
void respond(httplib::Response& res, const std::shared_ptr<Generation>& gen, bool stream, const std::string& model,
             std::function<json(const std::string&)> text_fields, std::function<json()> done_fields = nullptr) {
  auto object = [gen, model, text_fields, done_fields](const Piece& p, const std::string& text) {
    json out{{"model", model}, {"created_at", now_rfc3339()}};
    out.update(text_fields(text));
    out["done"] = p.kind == Piece::Kind::Done;
    if (p.kind == Piece::Kind::Done) {
      out["done_reason"] = p.done_reason;
      out.update(ollama_stats(*gen, p));
      if (done_fields) out.update(done_fields());
    }
    return out;
  };
  if (stream) {
    stream_response(res, "application/x-ndjson", gen, [object](const Piece& p) {
      if (p.kind == Piece::Kind::Error) return dump_json(json{{"error", p.error}}) + "\n";
      return dump_json(object(p, p.content)) + "\n";
    });
    return;
  }
  std::string all;
  json out;
  drain(*gen, [&](const Piece& p) {
    all += p.content;
    if (p.kind == Piece::Kind::Done) out = object(p, all);
  });
  send_json(res, 200, out);
}

}  // namespace

// /api/chat with tools: the whole text is needed to tell a call from an
// answer, so a streamed response is held back and sent at the end as one
// chunk (content before the call + message.tool_calls), then the done chunk.
void respond_with_tools(httplib::Response& res, const std::shared_ptr<Generation>& gen, bool stream,
                        const std::string& model, chat::ToolFormat fmt) {
  auto message_of = [fmt](const std::string& text) {
    json msg{{"role", "assistant"}, {"content", text}};
    if (auto parsed = chat::parse_tool_calls(text, fmt)) {
      msg["content"] = parsed->content;
      msg["tool_calls"] = ollama_tool_calls(*parsed);
    }
    return msg;
  };
  auto done_object = [gen, model](const Piece& p, json message) {
    json out{{"model", model}, {"created_at", now_rfc3339()}, {"message", std::move(message)}, {"done", true}};
    out["done_reason"] = p.done_reason;
    out.update(ollama_stats(*gen, p));
    return out;
  };
  if (stream) {
    auto text = std::make_shared<std::string>();
    stream_response(res, "application/x-ndjson", gen, [=](const Piece& p) -> std::string {
      if (p.kind == Piece::Kind::Error) return dump_json(json{{"error", p.error}}) + "\n";
      *text += p.content;
      if (p.kind != Piece::Kind::Done) return "";
      json first{{"model", model}, {"created_at", now_rfc3339()}, {"message", message_of(*text)}, {"done", false}};
      return dump_json(first) + "\n" + dump_json(done_object(p, json{{"role", "assistant"}, {"content", ""}})) + "\n";
    });
    return;
  }
  std::string all;
  json out;
  drain(*gen, [&](const Piece& p) {
    all += p.content;
    if (p.kind == Piece::Kind::Done) out = done_object(p, message_of(all));
  });
  send_json(res, 200, out);
}

void Server::Impl::generate(const httplib::Request& req, httplib::Response& res) {
  const auto t0 = Clock::now();
  json body = parse_body(req.body);
  const std::string name = model_field(body);
  const std::string prompt = get_string(body, "prompt");
  const std::string system = get_string(body, "system");
  const std::string suffix = get_string(body, "suffix");
  const bool raw = get_bool(body, "raw", false);
  const bool stream = get_bool(body, "stream", true);
  const std::string template_override = get_string(body, "template");  // Go syntax, as Ollama's
  const std::vector<int32_t> context = parse_context(body);
  const bool think = wants_thinking(body);
  reject_images(body);
  const json format = ollama_format(body, req.body);
  if (!suffix.empty()) fail("field 'suffix' (fill-in-the-middle) is not supported by this model");
  if (raw && (!template_override.empty() || !system.empty() || !context.empty()))
    fail("raw mode does not support template, system, or context");
  const auto keep_alive = parse_keep_alive(field(body, "keep_alive"));
  store::ModelInfo m = model(name);
  check_thinking_supported(think, name);
  ResolvedOptions opt = resolve_options(m.params, field(body, "options"));
  if (prompt.empty()) return load_or_unload(*this, m, opt, keep_alive, res, false);

  const RenderedPrompt text = raw ? RenderedPrompt{prompt, true} : render_generate(m, system, prompt, template_override);
  auto lease = acquire(m, opt, keep_alive);
  json runner_request = runner_body(text, opt, format);
  // Not raw: the prompt goes as ids, which the last object gives back as "context" with the generated ids.
  std::vector<int32_t> ids;
  if (!raw) {
    ids = prompt_ids(*lease, text, context);
    runner_request["prompt"] = ids;
  }
  auto gen = std::make_shared<Generation>(std::move(lease), "/completion", runner_request, t0, metrics.get());
  std::function<json()> context_field;
  if (!raw)
    context_field = [gen, ids] {
      std::vector<int32_t> all = ids;
      all.insert(all.end(), gen->generated_ids().begin(), gen->generated_ids().end());
      return json{{"context", all}};
    };
  respond(res, gen, stream, m.name.display(), [](const std::string& text) { return json{{"response", text}}; },
          context_field);
}

void Server::Impl::chat(const httplib::Request& req, httplib::Response& res) {
  const auto t0 = Clock::now();
  json body = parse_body(req.body);
  const std::string name = model_field(body);
  const bool stream = get_bool(body, "stream", true);
  const json format = ollama_format(body, req.body);
  const json tools = parse_tools(field(body, "tools"));
  const bool think = wants_thinking(body);
  const json* msgs = field(body, "messages");
  std::vector<ChatMessage> messages = msgs ? parse_messages(*msgs) : std::vector<ChatMessage>{};
  const auto keep_alive = parse_keep_alive(field(body, "keep_alive"));
  store::ModelInfo m = model(name);
  check_tools_supported(m, tools);
  check_thinking_supported(think, name);
  ResolvedOptions opt = resolve_options(m.params, field(body, "options"));
  if (messages.empty()) return load_or_unload(*this, m, opt, keep_alive, res, true);

  const RenderedPrompt text = render_chat(m, messages, tools);
  auto gen = std::make_shared<Generation>(acquire(m, opt, keep_alive), "/completion", runner_body(text, opt, format),
                                         t0, metrics.get());
  if (!tools.is_null()) return respond_with_tools(res, gen, stream, m.name.display(), text.tool_format);
  respond(res, gen, stream, m.name.display(), [](const std::string& text) {
    return json{{"message", {{"role", "assistant"}, {"content", text}}}};
  });
}

void Server::Impl::embed(const httplib::Request& req, httplib::Response& res, bool legacy) {
  const auto t0 = Clock::now();
  json body = parse_body(req.body);
  const std::string name = model_field(body);
  std::vector<std::string> inputs;
  if (legacy) {
    inputs.push_back(get_string(body, "prompt"));
  } else {
    const json* in = field(body, "input");
    if (in == nullptr) fail("missing field 'input'");
    if (in->is_string()) {
      inputs.push_back(in->get<std::string>());
    } else if (in->is_array()) {
      for (size_t i = 0; i < in->size(); ++i) {
        if (!(*in)[i].is_string()) fail("field 'input'[{}] must be a string, got {}", i, type_of((*in)[i]));
        inputs.push_back((*in)[i].get<std::string>());
      }
    } else {
      fail("field 'input' must be a string or an array of strings, got {}", type_of(*in));
    }
  }
  const bool truncate = get_bool(body, "truncate", true);
  const size_t dimensions = legacy ? 0 : parse_dimensions(body);
  const auto keep_alive = parse_keep_alive(field(body, "keep_alive"));
  store::ModelInfo m = model(name);
  ResolvedOptions opt = resolve_options(m.params, field(body, "options"));
  auto lease = acquire(m, opt, keep_alive);
  const double load_ms = lease->load_ms();
  json out{{"model", m.name.display()}};
  if (legacy) {
    // The legacy endpoint answers an empty prompt with an empty vector (Ollama's behaviour).
    if (inputs[0].empty()) {
      send_json(res, 200, json{{"embedding", json::array()}});
      return;
    }
    EmbedResult r = run_embeddings(*lease, inputs, opt.num_ctx, truncate);
    send_json(res, 200, json{{"embedding", r.vectors.at(0)}});
    return;
  }
  json vecs = json::array();
  int n_prompt = 0;
  for (const auto& s : inputs)
    if (s.empty()) fail("field 'input' holds an empty string: there is nothing to embed");
  if (!inputs.empty()) {
    EmbedResult r = run_embeddings(*lease, inputs, opt.num_ctx, truncate);
    for (auto& v : r.vectors) vecs.push_back(with_dimensions(normalized(v), dimensions));
    n_prompt = r.n_prompt;
  }
  auto ns = [](double ms) { return static_cast<int64_t>(ms * 1e6); };
  out["embeddings"] = std::move(vecs);
  out["total_duration"] = ns(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  out["load_duration"] = ns(load_ms);
  out["prompt_eval_count"] = n_prompt;
  send_json(res, 200, out);
}

void Server::Impl::routes_ollama() {
  svr.Post("/api/generate", ollama_handler([this](const auto& req, auto& res) { generate(req, res); }));
  svr.Post("/api/chat", ollama_handler([this](const auto& req, auto& res) { chat(req, res); }));
  svr.Post("/api/embed", ollama_handler([this](const auto& req, auto& res) { embed(req, res, false); }));
  svr.Post("/api/embeddings", ollama_handler([this](const auto& req, auto& res) { embed(req, res, true); }));
}

}  // namespace pl::server
