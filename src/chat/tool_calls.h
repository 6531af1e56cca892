// Reading a model's tool calls back out of its generated text.
//
// Each model family writes calls its own way (what its chat template teaches):
//   Llama3   a JSON object {"name": ..., "parameters": {...}} (or "arguments"),
//            optionally after <|python_tag|>; also a JSON array of them, or
//            several objects separated by ';' after the tag.
//   Hermes   Qwen 2.5/3, Hermes: one or more
//            <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>
//            (a last one cut off before its closing tag is accepted).
//   Mistral  [TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...], or the
//            newer [TOOL_CALLS]name[ARGS]{...} (repeated for several calls)
// The text before the first call is the message's content (trimmed).
// Arguments given as a JSON string holding an object are unwrapped.
// Anything that is not a well-formed call gives nullopt (never throws): the
// text is then an ordinary answer.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace pl::chat {

enum class ToolFormat { Llama3, Hermes, Mistral };

struct ToolCall {
  std::string name;
  nlohmann::ordered_json arguments = nlohmann::ordered_json::object();  // always an object
};

struct ParsedToolCalls {
  std::string content;  // the text before the calls
  std::vector<ToolCall> calls;  // at least one
};

// The format a chat template teaches, from its source (Jinja or Go):
// "<tool_call>" -> Hermes, "[TOOL_CALLS]" -> Mistral, else Llama3 (whose
// templates mark calls with <|python_tag|> / the ipython role, and whose bare
// JSON form is also what templates without a marker tend to ask for).
ToolFormat tool_format_of(std::string_view template_source);

std::optional<ParsedToolCalls> parse_tool_calls(std::string_view output, ToolFormat fmt);

}  // namespace pl::chat
