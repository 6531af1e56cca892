// OpenAI-compatible endpoints: /v1/chat/completions, /v1/completions,
// /v1/embeddings, /v1/models. Errors use OpenAI's shape, so its clients raise
// their usual exceptions.
#include <ctime>
#include <limits>
#include <optional>

#include "core/error.h"
#include "server/prompt.h"
#include "server/response_format.h"
#include "server/server_impl.h"

namespace pl::server {

using nlohmann::json;

namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string new_id(const char* prefix) {
  static std::atomic<uint64_t> n{0};
  return fmt::format("{}-{}{}", prefix, unix_now() % 100000, n.fetch_add(1) + 1);
}

// max_completion_tokens (the newer name, it wins) or max_tokens: as OpenAI, a
// positive integer; null is "not set". nullopt when neither is given.
std::optional<json> max_tokens(const json& body) {
  std::optional<json> out;
  for (const char* k : {"max_tokens", "max_completion_tokens"}) {
    const json* v = field(body, k);
    if (v == nullptr) continue;
    if (!v->is_number_integer())
      fail("field '{}' must be an integer, got {}", k, v->is_number() ? v->dump() : type_of(*v));
    // Non-negative integers parse as unsigned; beyond int64 is "no limit" anyway.
    if (!v->is_number_unsigned() || v->get<uint64_t>() == 0)
      fail("field '{}' must be at least 1, got {}", k, v->dump());
    out = json(std::min<uint64_t>(v->get<uint64_t>(), std::numeric_limits<int64_t>::max()));
  }
  return out;
}

// stream_options.include_usage; a null field (or null stream_options) is "not set".
bool include_usage(const json& body) {
  const json* so = field(body, "stream_options");
  if (so == nullptr) return false;
  if (!so->is_object()) fail("field 'stream_options' must be an object, got {}", type_of(*so));
  const json* v = field(*so, "include_usage");
  if (v == nullptr) return false;
  if (!v->is_boolean()) fail("field 'stream_options.include_usage' must be a boolean, got {}", type_of(*v));
  return v->get<bool>();
}

// OpenAI sampling fields -> Ollama options (then resolve_options maps them to the runner).
// As Ollama's compatibility layer does, temperature and top_p default to 1.
json openai_options(const json& body) {
  json o = json::object();
  o["temperature"] = 1.0;
  o["top_p"] = 1.0;
  for (const char* k : {"temperature", "top_p", "seed", "frequency_penalty", "presence_penalty"})
    if (const json* v = field(body, k)) o[k] = *v;
  if (auto n = max_tokens(body)) o["num_predict"] = *n;
  if (const json* v = field(body, "stop")) o["stop"] = *v;
  if (const json* n = field(body, "n"); n != nullptr && !(n->is_number_integer() && n->get<int64_t>() == 1))
    fail("only n = 1 is supported, got {}", n->dump());
  return o;
}

std::string finish_reason(const std::string& done_reason) { return done_reason == "length" ? "length" : "stop"; }

json usage_json(const Piece& done) {
  const int p = done.timings.value("prompt_n", 0), c = done.timings.value("predicted_n", 0);
  return json{{"prompt_tokens", p}, {"completion_tokens", c}, {"total_tokens", p + c}};
}

std::string sse(const json& j) { return "data: " + dump_json(j) + "\n\n"; }

// base64 of the little-endian float32 bytes (OpenAI's encoding_format "base64").
std::string base64_floats(const std::vector<float>& v) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* b = reinterpret_cast<const unsigned char*>(v.data());
  const size_t n = v.size() * sizeof(float);
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t x = (uint32_t{b[i]} << 16) | (i + 1 < n ? uint32_t{b[i + 1]} << 8 : 0) | (i + 2 < n ? b[i + 2] : 0);
    out += tbl[(x >> 18) & 63];
    out += tbl[(x >> 12) & 63];
    out += i + 1 < n ? tbl[(x >> 6) & 63] : '=';
    out += i + 2 < n ? tbl[x & 63] : '=';
  }
  return out;
}

// OpenAI's message.tool_calls: arguments travel as a JSON string.
json openai_tool_calls(const chat::ParsedToolCalls& parsed, bool with_index) {
  json calls = json::array();
  for (size_t i = 0; i < parsed.calls.size(); ++i) {
    json c{{"id", new_id("call")},
           {"type", "function"},
           {"function", {{"name", parsed.calls[i].name}, {"arguments", parsed.calls[i].arguments.dump()}}}};
    if (with_index) c["index"] = i;  // stream deltas name their slot
    calls.push_back(std::move(c));
  }
  return calls;
}

}  // namespace

void Server::Impl::oai_chat(const httplib::Request& req, httplib::Response& res) {
  const auto t0 = Clock::now();
  json body = parse_body(req.body);
  const std::string name = get_string(body, "model");
  if (name.empty()) fail("missing field 'model'");
  const bool stream = get_bool(body, "stream", false);
  const bool usage = include_usage(body);
  const json format = openai_response_format(body, req.body);
  const json tools = parse_tools(field(body, "tools"));
  const json* msgs = field(body, "messages");
  if (msgs == nullptr) fail("missing field 'messages'");
  std::vector<ChatMessage> messages = parse_messages(*msgs);
  if (messages.empty()) fail("field 'messages' is empty");
  json options = openai_options(body);
  store::ModelInfo m = model(name);
  check_tools_supported(m, tools);
  ResolvedOptions opt = resolve_options(m.params, &options);
  const RenderedPrompt rendered = render_chat(m, messages, tools);
  // With tools the whole text is needed to tell a call from an answer: a
  // stream is held back and sent at the end (content, then the calls).
  const bool has_tools = !tools.is_null();
  const chat::ToolFormat tool_format = rendered.tool_format;
  auto gen = std::make_shared<Generation>(acquire(m, opt, std::nullopt), "/completion",
                                          runner_body(rendered, opt, format), t0, metrics.get());
  const std::string id = new_id("chatcmpl");
  const int64_t created = unix_now();
  const std::string model_name = name;
  auto chunk = [=](json delta, json finish) {
    return json{{"id", id},
                {"object", "chat.completion.chunk"},
                {"created", created},
                {"model", model_name},
                {"system_fingerprint", "fp_parallama"},
                {"choices", json::array({json{{"index", 0}, {"delta", std::move(delta)}, {"finish_reason", finish}}})}};
  };
  if (stream) {
    auto first = std::make_shared<bool>(true);
    auto held = std::make_shared<std::string>();
    stream_response(
        res, "text/event-stream", gen,
        [=](const Piece& p) {
          if (p.kind == Piece::Kind::Error) return sse(openai_error(500, p.error));
          std::string out;
          if (*first) {  // the role comes once, first
            out += sse(chunk(json{{"role", "assistant"}, {"content", ""}}, nullptr));
            *first = false;
          }
          if (has_tools) {
            *held += p.content;
            if (p.kind != Piece::Kind::Done) return out;
          }
          std::string finish = finish_reason(p.done_reason);
          if (!has_tools) {
            if (!p.content.empty()) out += sse(chunk(json{{"content", p.content}}, nullptr));
          } else if (auto parsed = chat::parse_tool_calls(*held, tool_format)) {
            if (!parsed->content.empty()) out += sse(chunk(json{{"content", parsed->content}}, nullptr));
            out += sse(chunk(json{{"tool_calls", openai_tool_calls(*parsed, true)}}, nullptr));
            finish = "tool_calls";
          } else if (!held->empty()) {
            out += sse(chunk(json{{"content", *held}}, nullptr));
          }
          if (p.kind == Piece::Kind::Done) {
            out += sse(chunk(json::object(), finish));
            if (usage) {
              json u = chunk(json::object(), nullptr);
              u["choices"] = json::array();
              u["usage"] = usage_json(p);
              out += sse(u);
            }
          }
          return out;
        },
        "data: [DONE]\n\n");
    return;
  }
  std::string all;
  json out;
  drain(*gen, [&](const Piece& p) {
    all += p.content;
    if (p.kind != Piece::Kind::Done) return;
    json message{{"role", "assistant"}, {"content", all}};
    std::string finish = finish_reason(p.done_reason);
    if (auto parsed = has_tools ? chat::parse_tool_calls(all, tool_format) : std::nullopt) {
      // OpenAI gives null content when the answer is only calls.
      message["content"] = parsed->content.empty() ? json(nullptr) : json(parsed->content);
      message["tool_calls"] = openai_tool_calls(*parsed, false);
      finish = "tool_calls";
    }
    out = json{{"id", id},
               {"object", "chat.completion"},
               {"created", created},
               {"model", model_name},
               {"system_fingerprint", "fp_parallama"},
               {"choices", json::array({json{{"index", 0}, {"message", std::move(message)}, {"finish_reason", finish}}})},
               {"usage", usage_json(p)}};
  });
  send_json(res, 200, out);
}

void Server::Impl::oai_completions(const httplib::Request& req, httplib::Response& res) {
  const auto t0 = Clock::now();
  json body = parse_body(req.body);
  const std::string name = get_string(body, "model");
  if (name.empty()) fail("missing field 'model'");
  const bool stream = get_bool(body, "stream", false);
  const bool usage = include_usage(body);
  std::string prompt;
  const json* p = field(body, "prompt");
  if (p == nullptr) fail("missing field 'prompt'");
  if (p->is_string()) {
    prompt = p->get<std::string>();
  } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
    prompt = (*p)[0].get<std::string>();
  } else {
    fail("field 'prompt' must be a string (or an array of one string)");
  }
  if (prompt.empty()) fail("field 'prompt' is empty");
  if (!get_string(body, "suffix").empty()) fail("field 'suffix' is not supported by this model");
  const json format = openai_response_format(body, req.body);
  json options = openai_options(body);
  store::ModelInfo m = model(name);
  ResolvedOptions opt = resolve_options(m.params, &options);
  // The prompt as it is (add_special: the runner's default, BOS as the tokenizer says).
  auto gen = std::make_shared<Generation>(acquire(m, opt, std::nullopt), "/completion",
                                          runner_body(RenderedPrompt{prompt, true}, opt, format), t0, metrics.get());
  const std::string id = new_id("cmpl");
  const int64_t created = unix_now();
  auto body_of = [=](const std::string& text, json finish) {
    return json{{"id", id},
                {"object", "text_completion"},
                {"created", created},
                {"model", name},
                {"system_fingerprint", "fp_parallama"},
                {"choices", json::array({json{{"text", text}, {"index", 0}, {"logprobs", nullptr},
                                              {"finish_reason", finish}}})}};
  };
  if (stream) {
    stream_response(
        res, "text/event-stream", gen,
        [=](const Piece& pc) {
          if (pc.kind == Piece::Kind::Error) return sse(openai_error(500, pc.error));
          if (pc.kind != Piece::Kind::Done) return sse(body_of(pc.content, nullptr));
          std::string out = sse(body_of(pc.content, finish_reason(pc.done_reason)));
          if (usage) {
            json u = body_of("", nullptr);
            u["choices"] = json::array();
            u["usage"] = usage_json(pc);
            out += sse(u);
          }
          return out;
        },
        "data: [DONE]\n\n");
    return;
  }
  std::string all;
  json out;
  drain(*gen, [&](const Piece& pc) {
    all += pc.content;
    if (pc.kind != Piece::Kind::Done) return;
    out = body_of(all, finish_reason(pc.done_reason));
    out["usage"] = usage_json(pc);
  });
  send_json(res, 200, out);
}

void Server::Impl::oai_embeddings(const httplib::Request& req, httplib::Response& res) {
  json body = parse_body(req.body);
  const std::string name = get_string(body, "model");
  if (name.empty()) fail("missing field 'model'");
  const std::string encoding = get_string(body, "encoding_format", "float");
  if (encoding != "float" && encoding != "base64")
    fail("field 'encoding_format' must be \"float\" or \"base64\", got \"{}\"", encoding);
  if (field(body, "dimensions") != nullptr) fail("field 'dimensions' is not supported");
  std::vector<std::string> inputs;
  const json* in = field(body, "input");
  if (in == nullptr) fail("missing field 'input'");
  if (in->is_string()) {
    inputs.push_back(in->get<std::string>());
  } else if (in->is_array() && !in->empty()) {
    for (size_t i = 0; i < in->size(); ++i) {
      if (!(*in)[i].is_string()) fail("field 'input'[{}] must be a string (token arrays are not supported)", i);
      inputs.push_back((*in)[i].get<std::string>());
    }
  } else {
    fail("field 'input' must be a string or a non-empty array of strings");
  }
  for (const auto& s : inputs)
    if (s.empty()) fail("field 'input' holds an empty string: there is nothing to embed");
  store::ModelInfo m = model(name);
  ResolvedOptions opt = resolve_options(m.params, nullptr);
  auto lease = acquire(m, opt, std::nullopt);
  EmbedResult r = run_embeddings(*lease, inputs, opt.num_ctx, true);
  json data = json::array();
  for (size_t i = 0; i < r.vectors.size(); ++i) {
    std::vector<float> v = normalized(r.vectors[i]);
    data.push_back(json{{"object", "embedding"},
                        {"embedding", encoding == "base64" ? json(base64_floats(v)) : json(v)},
                        {"index", i}});
  }
  send_json(res, 200,
            json{{"object", "list"},
                 {"data", data},
                 {"model", name},
                 {"usage", {{"prompt_tokens", r.n_prompt}, {"total_tokens", r.n_prompt}}}});
}

void Server::Impl::routes_openai() {
  svr.Post("/v1/chat/completions", openai_handler([this](const auto& req, auto& res) { oai_chat(req, res); }));
  svr.Post("/v1/completions", openai_handler([this](const auto& req, auto& res) { oai_completions(req, res); }));
  svr.Post("/v1/embeddings", openai_handler([this](const auto& req, auto& res) { oai_embeddings(req, res); }));
  svr.Get("/v1/models", openai_handler([this](const auto&, auto& res) {
    json data = json::array();
    for (const auto& m : store.list())
      data.push_back(json{{"id", m.name.display()}, {"object", "model"}, {"created", unix_of_rfc3339(m.modified_at)},
                          {"owned_by", m.name.ns}});
    send_json(res, 200, json{{"object", "list"}, {"data", data}});
  }));
  svr.Get(R"(/v1/models/(.+))", openai_handler([this](const httplib::Request& req, auto& res) {
    auto m = store.find(req.matches[1].str());
    if (!m) throw HttpError(404, fmt::format("The model '{}' does not exist", req.matches[1].str()));
    send_json(res, 200, json{{"id", m->name.display()}, {"object", "model"}, {"created", unix_of_rfc3339(m->modified_at)},
                             {"owned_by", m->name.ns}});
  }));
}

}  // namespace pl::server
