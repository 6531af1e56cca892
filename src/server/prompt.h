// Prompt rendering for /api/generate, /api/chat and the OpenAI endpoints,
// through the model's template (src/chat):
//   1. the request's "template" (Go syntax, /api/generate only), else
//   2. the Modelfile's TEMPLATE (Go syntax, as models from an Ollama store carry), else
//   3. the GGUF's tokenizer.chat_template (Jinja, as transformers renders it), else
//   4. Ollama's plain fallback: "{system}\n\n{user}" turns.
// /api/generate renders [system?, user prompt] like Ollama; /api/chat the
// model's MESSAGEs and SYSTEM (when the request has no system message) first.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "chat/tool_calls.h"
#include "store/store.h"

namespace pl::server {

struct ChatMessage {
  std::string role;     // system | user | assistant | tool
  std::string content;
  nlohmann::json tool_calls;  // null or an array; string arguments that hold JSON are parsed to objects
  std::string tool_call_id;   // role "tool": OpenAI's tool_call_id
  std::string tool_name;      // role "tool": Ollama's tool_name (or OpenAI's name)
};

// Validates a request's "tools": an array of {type: "function", function:
// {name, description?, parameters?}}. Returns null for none (absent, null or
// []); throws pl::Error naming the bad element.
nlohmann::json parse_tools(const nlohmann::json* tools);

// Parses Ollama's / OpenAI's "messages" array (content may be OpenAI's array of
// parts: the text parts are joined); images are rejected (no vision models);
// throws pl::Error naming the bad element.
std::vector<ChatMessage> parse_messages(const nlohmann::json& messages);

struct RenderedPrompt {
  std::string text;
  // False when the template already wrote the BOS token's text (a Jinja
  // template with {{ bos_token }}): the runner must not add another.
  bool add_special = true;
  // How this model's template asks it to write tool calls (from its source).
  chat::ToolFormat tool_format = chat::ToolFormat::Llama3;
};

// /api/generate: system is the request's (or the model's SYSTEM when empty);
// template_override is the request's "template" ("" for none). Template errors
// throw pl::Error ("line L, column C: ...").
RenderedPrompt render_generate(const store::ModelInfo& model, const std::string& system, const std::string& prompt,
                               const std::string& template_override = "");
// tools: parse_tools()'s result (null for none), passed to the template.
RenderedPrompt render_chat(const store::ModelInfo& model, const std::vector<ChatMessage>& messages,
                           const nlohmann::json& tools = nullptr);

// What a model can do, as Ollama decides it: from the GGUF and from the template
// rendering uses (the Modelfile's TEMPLATE, else the GGUF's chat template). No
// model "thinks" here: the server does not separate reasoning from the answer.
struct ModelCapabilities {
  bool embedding = false;  // {arch}.pooling_type is set: an embedding model, not a completion one
  bool tools = false;      // the template renders tools (Go .Tools, Jinja `tools`)
};
ModelCapabilities model_capabilities(const store::ModelInfo& model);
// Ollama's names, in Ollama's order: "completion" or "embedding", then "tools". Never "insert"
// (fill-in-the-middle: `suffix` is refused).
std::vector<std::string> capability_names(const ModelCapabilities& caps);
// pl::Error "<model> does not support tools" (Ollama's wording) when tools
// (parse_tools()'s result) are given to a model whose template cannot render them.
void check_tools_supported(const store::ModelInfo& model, const nlohmann::json& tools);

}  // namespace pl::server
