#include "chat/tool_calls.h"

namespace pl::chat {

using ojson = nlohmann::ordered_json;

namespace {

constexpr std::string_view k_python_tag = "<|python_tag|>";
constexpr std::string_view k_tool_call_open = "<tool_call>";
constexpr std::string_view k_tool_call_close = "</tool_call>";
constexpr std::string_view k_mistral_tag = "[TOOL_CALLS]";
constexpr std::string_view k_mistral_args = "[ARGS]";

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// nullopt on bad JSON: parse with exceptions off, so garbage never throws.
std::optional<ojson> parse_json(std::string_view s) {
  ojson j = ojson::parse(s.begin(), s.end(), nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

// One {"name": "...", <args_key>: {...}} object; Llama 3 says "parameters",
// the others "arguments"; either is accepted everywhere.
std::optional<ToolCall> call_of(const ojson& j) {
  if (!j.is_object()) return std::nullopt;
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) return std::nullopt;
  ToolCall c;
  c.name = name->get<std::string>();
  auto args = j.find("arguments");
  if (args == j.end()) args = j.find("parameters");
  if (args == j.end() || args->is_null()) return c;
  if (args->is_string()) {  // some models write the arguments as a JSON string
    auto inner = parse_json(args->get_ref<const std::string&>());
    if (!inner || !inner->is_object()) return std::nullopt;
    c.arguments = std::move(*inner);
    return c;
  }
  if (!args->is_object()) return std::nullopt;
  c.arguments = *args;
  return c;
}

// An object or an array of objects, each a call.
bool append_calls(const ojson& j, std::vector<ToolCall>& out) {
  if (j.is_array()) {
    if (j.empty()) return false;
    for (const auto& e : j) {
      auto c = call_of(e);
      if (!c) return false;
      out.push_back(std::move(*c));
    }
    return true;
  }
  auto c = call_of(j);
  if (!c) return false;
  out.push_back(std::move(*c));
  return true;
}

std::optional<ParsedToolCalls> parse_llama3(std::string_view output) {
  ParsedToolCalls r;
  std::string_view body = trim(output);
  const size_t tag = body.find(k_python_tag);
  if (tag != std::string_view::npos) {
    r.content = std::string(trim(body.substr(0, tag)));
    body = trim(body.substr(tag + k_python_tag.size()));
  }
  if (body.empty() || (body.front() != '{' && body.front() != '[')) return std::nullopt;
  if (auto j = parse_json(body)) {
    if (!append_calls(*j, r.calls)) return std::nullopt;
    return r;
  }
  // Several calls after the tag: "{...}; {...}". JSON strings may hold ';',
  // so split only where the text before the ';' parses.
  if (tag == std::string_view::npos) return std::nullopt;
  size_t start = 0;
  for (size_t i = 0; i <= body.size(); ++i) {
    if (i < body.size() && body[i] != ';') continue;
    if (i == body.size() && trim(body.substr(start)).empty()) break;  // a trailing ';'
    auto j = parse_json(body.substr(start, i - start));
    if (!j) {
      if (i == body.size()) return std::nullopt;
      continue;
    }
    if (!append_calls(*j, r.calls)) return std::nullopt;
    start = i + 1;
  }
  if (r.calls.empty()) return std::nullopt;
  return r;
}

std::optional<ParsedToolCalls> parse_hermes(std::string_view output) {
  size_t at = output.find(k_tool_call_open);
  if (at == std::string_view::npos) return std::nullopt;
  ParsedToolCalls r;
  r.content = std::string(trim(output.substr(0, at)));
  while (at != std::string_view::npos) {
    const size_t body_begin = at + k_tool_call_open.size();
    const size_t close = output.find(k_tool_call_close, body_begin);
    const std::string_view body =
        output.substr(body_begin, close == std::string_view::npos ? std::string_view::npos : close - body_begin);
    auto j = parse_json(trim(body));
    if (!j || !append_calls(*j, r.calls)) return std::nullopt;
    if (close == std::string_view::npos) break;  // cut off at the end of generation
    const size_t next = close + k_tool_call_close.size();
    at = output.find(k_tool_call_open, next);
    // Only whitespace may sit between and after the calls.
    const std::string_view gap = output.substr(next, at == std::string_view::npos ? std::string_view::npos : at - next);
    if (!trim(gap).empty()) return std::nullopt;
  }
  return r;
}

// One call after [TOOL_CALLS]: a JSON array/object, or the newer
// "name[ARGS]{...}" form of later Mistral templates.
bool append_mistral_segment(std::string_view seg, std::vector<ToolCall>& out) {
  seg = trim(seg);
  if (!seg.empty() && (seg.front() == '[' || seg.front() == '{')) {
    auto j = parse_json(seg);
    return j && append_calls(*j, out);
  }
  const size_t args = seg.find(k_mistral_args);
  if (args == std::string_view::npos) return false;
  ToolCall c;
  c.name = std::string(trim(seg.substr(0, args)));
  auto j = parse_json(trim(seg.substr(args + k_mistral_args.size())));
  if (c.name.empty() || !j || !j->is_object()) return false;
  c.arguments = std::move(*j);
  out.push_back(std::move(c));
  return true;
}

std::optional<ParsedToolCalls> parse_mistral(std::string_view output) {
  size_t tag = output.find(k_mistral_tag);
  if (tag == std::string_view::npos) return std::nullopt;
  ParsedToolCalls r;
  r.content = std::string(trim(output.substr(0, tag)));
  while (tag != std::string_view::npos) {
    const size_t begin = tag + k_mistral_tag.size();
    tag = output.find(k_mistral_tag, begin);
    const size_t len = tag == std::string_view::npos ? std::string_view::npos : tag - begin;
    if (!append_mistral_segment(output.substr(begin, len), r.calls)) return std::nullopt;
  }
  return r;
}

}  // namespace

ToolFormat tool_format_of(std::string_view template_source) {
  if (template_source.find(k_tool_call_open) != std::string_view::npos) return ToolFormat::Hermes;
  if (template_source.find(k_mistral_tag) != std::string_view::npos) return ToolFormat::Mistral;
  return ToolFormat::Llama3;
}

std::optional<ParsedToolCalls> parse_tool_calls(std::string_view output, ToolFormat fmt) {
  try {
    switch (fmt) {
      case ToolFormat::Llama3: return parse_llama3(output);
      case ToolFormat::Hermes: return parse_hermes(output);
      case ToolFormat::Mistral: return parse_mistral(output);
    }
  } catch (const std::exception&) {
    // Defensive: the parsers use non-throwing JSON; an allocation failure is
    // still no reason to fail the whole response.
  }
  return std::nullopt;
}

}  // namespace pl::chat
