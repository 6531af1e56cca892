// Turning a conversation into the model's prompt text.
//
// Which template (select_chat_template): the Modelfile's TEMPLATE (Go syntax)
// when the model has one, as models from an Ollama store do; else the GGUF's
// tokenizer.chat_template (Jinja); else a plain fallback.
//
// How each renders (render_chat):
//   Jinja     as transformers' apply_chat_template: variables messages, tools
//             (null when there are none, as transformers passes None),
//             add_generation_prompt, bos_token / eos_token (when non-empty),
//             plus ChatOptions::extra_context (e.g. enable_thinking,
//             date_string). A message is {role, content}, plus tool_calls,
//             reasoning_content and thinking, tool_call_id, name when set.
//   Go        as Ollama's template.Execute: consecutive messages of one role
//             are merged ("\n\n"; tool messages never), System is every system
//             message joined by "\n\n". A template that mentions .Messages gets
//             {System, Messages, Tools, Response: "", Think, IsThinkSet}; an
//             older prompt/response template is run once per turn with
//             {System, Prompt, Response} and, for the last turn, cut after its
//             first {{ .Response }} (Ollama appends {{ .Response }} to templates
//             that name neither). add_generation_prompt and the special
//             tokens do not apply: Ollama templates always end ready for the
//             answer.
//   Fallback  Ollama's legacy mode with the template
//             "{{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}
//              {{ if .Response }}\n\n{{ .Response }}\n\n{{ end }}" (no spaces
//             between the braces): "system\n\nuser\n\nassistant\n\nuser".
//
// Errors throw pl::Error: the template's own (raise_exception, a bad
// conversation, limits), with "line L, column C:".
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chat/gotmpl.h"
#include "chat/jinja.h"

namespace pl {
class GgufFile;
}

namespace pl::chat {

struct Message {
  std::string role;  // "system", "user", "assistant", "tool"
  std::string content;
  std::string thinking;  // the assistant's reasoning (Ollama's "thinking", transformers' "reasoning_content")
  // [{"id"?, "type": "function", "function": {"name": ..., "arguments": {...} or "..."}}, ...]
  nlohmann::ordered_json tool_calls = nlohmann::ordered_json::array();
  std::string tool_name;     // role "tool": the tool that answered (Ollama's tool_name)
  std::string tool_call_id;  // role "tool": the call it answers (OpenAI's tool_call_id)
};

struct ChatOptions {
  nlohmann::ordered_json tools;  // tool definitions (an array), or null for none
  bool add_generation_prompt = true;
  std::string bos_token, eos_token;
  nlohmann::ordered_json extra_context = nlohmann::ordered_json::object();  // more Jinja variables
  std::optional<bool> think;  // Go templates: .Think and .IsThinkSet
  RenderOptions render;       // limits, and the clock for strftime_now
};

enum class TemplateKind { Jinja, Go, Fallback };

class ChatTemplate {
 public:
  // Throw pl::Error (with line and column) when the source does not parse.
  static ChatTemplate jinja(std::string_view source);
  static ChatTemplate go(std::string_view source);
  static ChatTemplate fallback();

  TemplateKind kind() const { return kind_; }
  const std::string& source() const;

  std::string render(std::span<const Message> messages, const ChatOptions& options) const;

 private:
  TemplateKind kind_ = TemplateKind::Fallback;
  std::optional<Template> jinja_;
  std::optional<GoTemplate> go_;
};

// Empty strings mean "absent". Parse errors name the template they come from.
ChatTemplate select_chat_template(std::string_view modelfile_template, std::string_view gguf_chat_template);
// The same with the GGUF's tokenizer.chat_template read from the file.
ChatTemplate select_chat_template(std::string_view modelfile_template, const GgufFile& gguf);

inline std::string render_chat(const ChatTemplate& t, std::span<const Message> messages, const ChatOptions& options) {
  return t.render(messages, options);
}

// The variables each engine sees, for tests and debugging.
nlohmann::ordered_json jinja_context(std::span<const Message> messages, const ChatOptions& options);
// Ollama's collate: system text and the merged messages, as Go template data.
nlohmann::ordered_json ollama_messages_data(std::span<const Message> messages, const ChatOptions& options);

}  // namespace pl::chat
