#include "chat/chat.h"

#include <algorithm>

#include "core/error.h"
#include "gguf/gguf.h"

namespace pl::chat {

using Json = nlohmann::ordered_json;

namespace {

constexpr std::string_view kFallbackTemplate =
    "{{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}{{ if .Response }}\n\n{{ .Response }}\n\n{{ end }}";

bool has_tools(const Json& tools) { return !tools.is_null() && !(tools.is_array() && tools.empty()); }

// Ollama's collate: consecutive messages of one role merge (tool results never
// do, each answers its own call); every system message also joins .System.
struct Collated {
  std::string system;
  std::vector<Message> messages;
};

Collated collate(std::span<const Message> msgs) {
  Collated c;
  bool first_system = true;
  for (const Message& m : msgs) {
    if (m.role == "system") {
      if (!first_system) c.system += "\n\n";
      c.system += m.content;
      first_system = false;
    }
    if (!c.messages.empty() && c.messages.back().role == m.role && m.role != "tool") {
      c.messages.back().content += "\n\n" + m.content;
    } else {
      c.messages.push_back(m);
    }
  }
  return c;
}

Json go_message(const Message& m) {
  // Ollama's api.Message JSON names; the Go names (.Role, .ToolCalls, ...) find
  // them (see gotmpl.h). Every field is present, as in a Go struct.
  return Json{{"role", m.role},
              {"content", m.content},
              {"thinking", m.thinking},
              {"tool_calls", m.tool_calls.is_null() ? Json::array() : m.tool_calls},
              {"tool_name", m.tool_name},
              {"tool_call_id", m.tool_call_id}};
}

std::string render_go(const GoTemplate& t, std::span<const Message> messages, const ChatOptions& o) {
  const std::vector<std::string> vars = t.identifiers();
  const auto mentions = [&](std::string_view v) { return std::find(vars.begin(), vars.end(), v) != vars.end(); };
  const bool think = o.think.value_or(false);
  const bool think_set = o.think.has_value();
  if (mentions("messages") || mentions("document")) return t.render(ollama_messages_data(messages, o), o.render.limits);

  // Legacy prompt/response templates: one execution per completed turn, then
  // the open turn with the template cut after its {{ .Response }}.
  const Collated c = collate(messages);
  std::string out, system, prompt, response;
  auto turn = [&](const GoTemplate& tpl) {
    out += tpl.render(Json{{"System", system}, {"Prompt", prompt}, {"Response", response}, {"Think", think},
                           {"IsThinkSet", think_set}},
                      o.render.limits);
    system.clear(), prompt.clear(), response.clear();
  };
  for (const Message& m : c.messages) {
    if (m.role == "system") {
      if (!prompt.empty() || !response.empty()) turn(t);
      system = m.content;
    } else if (m.role == "user") {
      if (!response.empty()) turn(t);
      prompt = m.content;
    } else if (m.role == "assistant") {
      response = m.content;
    }
  }
  turn(t.cut_after_response());
  if (out.size() > o.render.limits.max_output_bytes) pl::fail("template output exceeded {} bytes", o.render.limits.max_output_bytes);
  return out;
}

}  // namespace

Json jinja_context(std::span<const Message> messages, const ChatOptions& o) {
  Json msgs = Json::array();
  for (const Message& m : messages) {
    Json j{{"role", m.role}, {"content", m.content}};
    if (m.tool_calls.is_array() && !m.tool_calls.empty()) j["tool_calls"] = m.tool_calls;
    if (!m.thinking.empty()) {
      j["reasoning_content"] = m.thinking;
      j["thinking"] = m.thinking;
    }
    if (!m.tool_call_id.empty()) j["tool_call_id"] = m.tool_call_id;
    if (!m.tool_name.empty()) j["name"] = m.tool_name;
    msgs.push_back(std::move(j));
  }
  Json ctx{{"messages", std::move(msgs)},
           {"tools", has_tools(o.tools) ? o.tools : Json(nullptr)},
           {"add_generation_prompt", o.add_generation_prompt}};
  if (!o.bos_token.empty()) ctx["bos_token"] = o.bos_token;
  if (!o.eos_token.empty()) ctx["eos_token"] = o.eos_token;
  if (o.extra_context.is_object()) {
    for (const auto& [k, v] : o.extra_context.items()) ctx[k] = v;
  }
  return ctx;
}

Json ollama_messages_data(std::span<const Message> messages, const ChatOptions& o) {
  const Collated c = collate(messages);
  Json msgs = Json::array();
  for (const Message& m : c.messages) msgs.push_back(go_message(m));
  return Json{{"System", c.system},
              {"Messages", std::move(msgs)},
              {"Tools", has_tools(o.tools) ? o.tools : Json(nullptr)},
              {"Response", ""},
              {"Think", o.think.value_or(false)},
              {"IsThinkSet", o.think.has_value()}};
}

ChatTemplate ChatTemplate::jinja(std::string_view source) {
  ChatTemplate t;
  t.kind_ = TemplateKind::Jinja;
  t.jinja_ = Template::parse(source);
  return t;
}

ChatTemplate ChatTemplate::go(std::string_view source) {
  ChatTemplate t;
  t.kind_ = TemplateKind::Go;
  GoTemplate g = GoTemplate::parse(source);
  // As Ollama's template.Parse: a template that names neither the messages nor
  // the response gets {{ .Response }} appended.
  const std::vector<std::string> vars = g.identifiers();
  if (std::find(vars.begin(), vars.end(), "messages") == vars.end() &&
      std::find(vars.begin(), vars.end(), "response") == vars.end()) {
    g = g.with_response_appended();
  }
  t.go_ = std::move(g);
  return t;
}

ChatTemplate ChatTemplate::fallback() {
  ChatTemplate t = go(kFallbackTemplate);
  t.kind_ = TemplateKind::Fallback;
  return t;
}

const std::string& ChatTemplate::source() const { return jinja_ ? jinja_->source() : go_->source(); }

std::string ChatTemplate::render(std::span<const Message> messages, const ChatOptions& options) const {
  if (jinja_) return jinja_->render(jinja_context(messages, options), options.render);
  return render_go(*go_, messages, options);
}

ChatTemplate select_chat_template(std::string_view modelfile_template, std::string_view gguf_chat_template) {
  if (!modelfile_template.empty()) {
    try {
      return ChatTemplate::go(modelfile_template);
    } catch (const pl::Error& e) {
      pl::fail("Modelfile TEMPLATE: {}", e.what());
    }
  }
  if (!gguf_chat_template.empty()) {
    try {
      return ChatTemplate::jinja(gguf_chat_template);
    } catch (const pl::Error& e) {
      pl::fail("tokenizer.chat_template: {}", e.what());
    }
  }
  return ChatTemplate::fallback();
}

ChatTemplate select_chat_template(std::string_view modelfile_template, const GgufFile& gguf) {
  const std::string jinja = gguf.get_or<std::string>("tokenizer.chat_template", "");
  return select_chat_template(modelfile_template, jinja);
}

}  // namespace pl::chat
