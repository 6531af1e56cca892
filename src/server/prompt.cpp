#include "server/prompt.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "chat/chat.h"
#include "chat/jinja_lexer.h"
#include "core/error.h"
#include "gguf/gguf.h"
#include "server/http.h"

namespace pl::server {

using nlohmann::json;

namespace {

// What rendering and the capabilities need from a model's GGUF. Blobs are
// content-addressed, so a path's facts never change: read once per path.
struct GgufChatFacts {
  std::string chat_template;  // tokenizer.chat_template, or ""
  std::string bos_token, eos_token;
  bool pooling = false;  // {arch}.pooling_type is set (Ollama's sign of an embedding model)
};

const GgufChatFacts& chat_facts(const std::filesystem::path& gguf_path) {
  static std::mutex mu;
  static std::map<std::string, GgufChatFacts> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(gguf_path.string());
  if (it != cache.end()) return it->second;
  GgufChatFacts f;
  GgufFile g = GgufFile::open(gguf_path.string());
  f.chat_template = g.get_or<std::string>("tokenizer.chat_template", "");
  f.pooling = g.has(g.get_or<std::string>("general.architecture", "") + ".pooling_type");
  if (g.has("tokenizer.ggml.tokens")) {
    const auto& tokens = g.find("tokenizer.ggml.tokens")->array().items;
    auto piece = [&](const char* key) -> std::string {
      if (!g.has(key)) return "";
      const auto id = g.get<uint32_t>(key);
      if (id >= tokens.size() || tokens[id].type() != GgufType::STRING) return "";
      return std::get<std::string>(tokens[id].v);
    };
    f.bos_token = piece("tokenizer.ggml.bos_token_id");
    f.eos_token = piece("tokenizer.ggml.eos_token_id");
  }
  return cache.emplace(gguf_path.string(), std::move(f)).first->second;
}

std::vector<chat::Message> to_chat(const std::vector<ChatMessage>& in) {
  std::vector<chat::Message> out;
  for (const auto& m : in) {
    chat::Message c;
    c.role = m.role;
    c.content = m.content;
    if (m.tool_calls.is_array()) c.tool_calls = nlohmann::ordered_json::parse(m.tool_calls.dump());
    c.tool_call_id = m.tool_call_id;
    c.tool_name = m.tool_name;
    out.push_back(std::move(c));
  }
  return out;
}

RenderedPrompt render(const store::ModelInfo& model, const std::vector<ChatMessage>& messages,
                      const std::string& template_override, const json& tools = nullptr) {
  const GgufChatFacts& facts = chat_facts(model.model_path);
  const std::string go_source = !template_override.empty() ? template_override : model.template_text.value_or("");
  chat::ChatTemplate t = chat::select_chat_template(go_source, facts.chat_template);
  chat::ChatOptions opt;
  opt.tools = tools.is_array() ? nlohmann::ordered_json::parse(tools.dump()) : nlohmann::ordered_json(nullptr);
  opt.add_generation_prompt = true;
  opt.bos_token = facts.bos_token;
  opt.eos_token = facts.eos_token;
  RenderedPrompt out;
  out.text = t.render(to_chat(messages), opt);
  if (t.kind() == chat::TemplateKind::Jinja && !facts.bos_token.empty() && out.text.rfind(facts.bos_token, 0) == 0)
    out.add_special = false;
  out.tool_format = chat::tool_format_of(t.source());
  return out;
}

bool contains(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Whether a Jinja template names `name` in its code (not in its text or a string literal).
bool jinja_mentions(const std::string& source, std::string_view name) {
  for (const chat::jinja::Token& t : chat::jinja::lex(source))
    if (t.type == chat::jinja::Tok::Name && t.text == name) return true;
  return false;
}

// What the template render() picks can render: Ollama's test of a Go template's
// variables (.Tools); a Jinja template's `tools` (transformers' variable). No "insert": a
// template's .Suffix means nothing while /api/generate refuses `suffix`.
ModelCapabilities template_capabilities(const store::ModelInfo& model, const GgufChatFacts& facts) {
  ModelCapabilities caps;
  if (!model.template_text.value_or("").empty()) {
    const std::vector<std::string> vars = chat::GoTemplate::parse(*model.template_text).identifiers();
    caps.tools = contains(vars, "tools");
  } else if (!facts.chat_template.empty()) {
    caps.tools = jinja_mentions(facts.chat_template, "tools");
  }
  return caps;
}

}  // namespace

ModelCapabilities model_capabilities(const store::ModelInfo& model) {
  const GgufChatFacts& facts = chat_facts(model.model_path);
  ModelCapabilities caps;
  try {
    caps = template_capabilities(model, facts);
  } catch (const pl::Error&) {
    // A template that does not parse renders nothing (rendering reports the error).
  }
  caps.embedding = facts.pooling;
  return caps;
}

std::vector<std::string> capability_names(const ModelCapabilities& caps) {
  std::vector<std::string> names{caps.embedding ? "embedding" : "completion"};
  if (caps.tools) names.push_back("tools");
  return names;
}

void check_tools_supported(const store::ModelInfo& model, const json& tools) {
  if (!tools.is_null() && !model_capabilities(model).tools) fail("{} does not support tools", model.name.display());
}

std::vector<ChatMessage> parse_messages(const json& messages) {
  if (!messages.is_array()) fail("field 'messages' must be an array, got {}", type_of(messages));
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (!m.is_object()) fail("messages[{}] must be an object, got {}", i, type_of(m));
    ChatMessage cm;
    const json* role = field(m, "role");
    if (role == nullptr || !role->is_string()) fail("messages[{}] needs a string 'role'", i);
    cm.role = role->get<std::string>();
    if (cm.role != "system" && cm.role != "user" && cm.role != "assistant" && cm.role != "tool" &&
        cm.role != "developer")
      fail("messages[{}] has an unknown role '{}' (system, user, assistant or tool)", i, cm.role);
    if (cm.role == "developer") cm.role = "system";  // OpenAI's newer name for system
    if (const json* c = field(m, "content")) {
      if (c->is_string()) {
        cm.content = c->get<std::string>();
      } else if (c->is_array()) {  // OpenAI content parts
        for (size_t k = 0; k < c->size(); ++k) {
          const json& part = (*c)[k];
          const std::string type = part.is_object() ? get_string(part, "type") : "";
          if (type == "text") {
            cm.content += get_string(part, "text");
          } else if (type == "image_url") {
            fail("messages[{}]: this model does not support images", i);
          } else {
            fail("messages[{}].content[{}] must be a text part", i, k);
          }
        }
      } else {
        fail("messages[{}].content must be a string, got {}", i, type_of(*c));
      }
    }
    if (const json* imgs = field(m, "images"); imgs != nullptr && !(imgs->is_array() && imgs->empty()))
      fail("messages[{}]: this model does not support images", i);
    if (const json* tc = field(m, "tool_calls"); tc != nullptr && !tc->is_null()) {
      if (!tc->is_array()) fail("messages[{}].tool_calls must be an array, got {}", i, type_of(*tc));
      cm.tool_calls = *tc;
      // OpenAI sends arguments as a JSON string; templates expect the object.
      for (auto& call : cm.tool_calls)
        if (call.is_object() && call.contains("function") && call["function"].is_object()) {
          json& fn = call["function"];
          if (fn.contains("arguments") && fn["arguments"].is_string()) {
            json a = json::parse(fn["arguments"].get<std::string>(), nullptr, false);
            if (a.is_object()) fn["arguments"] = std::move(a);
          }
        }
    }
    cm.tool_call_id = get_string(m, "tool_call_id");
    cm.tool_name = get_string(m, "tool_name");
    if (cm.tool_name.empty() && cm.role == "tool") cm.tool_name = get_string(m, "name");
    out.push_back(std::move(cm));
  }
  return out;
}

RenderedPrompt render_generate(const store::ModelInfo& model, const std::string& system, const std::string& prompt,
                               const std::string& template_override) {
  std::vector<ChatMessage> msgs;
  const std::string& sys = system.empty() ? model.system : system;
  if (!sys.empty()) msgs.push_back({"system", sys, nullptr, "", ""});
  msgs.push_back({"user", prompt, nullptr, "", ""});
  return render(model, msgs, template_override);
}

json parse_tools(const json* tools) {
  if (tools == nullptr || tools->is_null()) return nullptr;
  if (!tools->is_array()) fail("field 'tools' must be an array, got {}", type_of(*tools));
  if (tools->empty()) return nullptr;
  for (size_t i = 0; i < tools->size(); ++i) {
    const json& t = (*tools)[i];
    if (!t.is_object()) fail("tools[{}] must be an object, got {}", i, type_of(t));
    if (get_string(t, "type") != "function") fail("tools[{}].type must be \"function\"", i);
    const json* fn = field(t, "function");
    if (fn == nullptr || !fn->is_object()) fail("tools[{}] needs a 'function' object", i);
    const json* name = field(*fn, "name");
    if (name == nullptr || !name->is_string() || name->get<std::string>().empty())
      fail("tools[{}].function needs a non-empty string 'name'", i);
    if (const json* d = field(*fn, "description"); d != nullptr && !d->is_string())
      fail("tools[{}].function.description must be a string, got {}", i, type_of(*d));
    if (const json* p = field(*fn, "parameters"); p != nullptr && !p->is_object())
      fail("tools[{}].function.parameters must be an object (a JSON schema), got {}", i, type_of(*p));
  }
  return *tools;
}

RenderedPrompt render_chat(const store::ModelInfo& model, const std::vector<ChatMessage>& messages,
                           const json& tools) {
  std::vector<ChatMessage> msgs;
  bool has_system = false;
  for (const auto& m : messages) has_system |= m.role == "system";
  if (!has_system && !model.system.empty()) msgs.push_back({"system", model.system, nullptr, "", ""});
  if (model.messages.is_array())
    for (const auto& m : model.messages)
      if (m.is_object() && m.contains("role") && m.contains("content") && m["content"].is_string())
        msgs.push_back({m["role"].get<std::string>(), m["content"].get<std::string>(), nullptr, "", ""});
  msgs.insert(msgs.end(), messages.begin(), messages.end());
  return render(model, msgs, "", tools);
}

}  // namespace pl::server
