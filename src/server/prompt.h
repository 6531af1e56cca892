// Prompt rendering for /api/generate, /api/chat and the OpenAI endpoints.
//
// Until the chat-template interpreter lands (src/chat), a model is rendered
// with the plain fallback Ollama users know from `{{ .Prompt }}` templates:
// generate is "{system}\n\n{prompt}" (just the prompt without a system), chat
// is every message's content in order, joined by "\n\n", with the model's
// SYSTEM and MESSAGEs first. The interface stays when the interpreter fills it.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "store/store.h"

namespace pl::server {

struct ChatMessage {
  std::string role;     // system | user | assistant | tool
  std::string content;
  nlohmann::json tool_calls;  // null or an array
};

// Parses Ollama's / OpenAI's "messages" array (content may be OpenAI's array of
// parts: the text parts are joined); images are rejected (no vision models);
// throws pl::Error naming the bad element.
std::vector<ChatMessage> parse_messages(const nlohmann::json& messages);

// /api/generate: system is the request's (or the model's SYSTEM when empty).
std::string render_generate(const store::ModelInfo& model, const std::string& system, const std::string& prompt);
// /api/chat: the model's MESSAGEs and SYSTEM (when the request has no system message) come first.
std::string render_chat(const store::ModelInfo& model, const std::vector<ChatMessage>& messages);

}  // namespace pl::server
