#include "server/prompt.h"

#include "core/error.h"
#include "server/http.h"

namespace pl::server {

using nlohmann::json;

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
    if (const json* tc = field(m, "tool_calls")) cm.tool_calls = *tc;
    out.push_back(std::move(cm));
  }
  return out;
}

std::string render_generate(const store::ModelInfo& model, const std::string& system, const std::string& prompt) {
  const std::string& sys = system.empty() ? model.system : system;
  if (sys.empty()) return prompt;
  return sys + "\n\n" + prompt;
}

std::string render_chat(const store::ModelInfo& model, const std::vector<ChatMessage>& messages) {
  std::vector<std::string> parts;
  bool has_system = false;
  for (const auto& m : messages) has_system |= m.role == "system";
  if (!has_system && !model.system.empty()) parts.push_back(model.system);
  if (model.messages.is_array())
    for (const auto& m : model.messages)
      if (m.is_object() && m.contains("content") && m["content"].is_string())
        parts.push_back(m["content"].get<std::string>());
  for (const auto& m : messages)
    if (!m.content.empty()) parts.push_back(m.content);
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += "\n\n";
    out += parts[i];
  }
  return out;
}

}  // namespace pl::server
