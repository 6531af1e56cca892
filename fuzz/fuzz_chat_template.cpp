// libFuzzer target for the chat template engines: any byte string is parsed
// as a Jinja template and as a Go template; what parses is rendered over a
// small conversation with tight limits. Everything must end in output or in
// pl::Error: a crash, a sanitizer report, a hang (the limits bound every
// render) or any other exception is a bug. Built with ASan+UBSan.
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string_view>

#include "chat/gotmpl.h"
#include "chat/jinja.h"
#include "core/error.h"

namespace {

const nlohmann::ordered_json& jinja_context() {
  static const nlohmann::ordered_json ctx = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are terse."},
      {"role": "user", "content": "Hi <b>there</b> \u00e9"},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "call12345", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
      {"role": "tool", "tool_call_id": "call12345", "content": "22C"},
      {"role": "user", "content": "<think>x</think>thanks"}],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})");
  return ctx;
}

const nlohmann::ordered_json& go_data() {
  static const nlohmann::ordered_json data = [] {
    nlohmann::ordered_json d = {{"System", "You are terse."}, {"Prompt", "Hi"}, {"Response", ""},
                                {"Think", false}, {"IsThinkSet", true}};
    d["Messages"] = jinja_context()["messages"];
    d["Tools"] = jinja_context()["tools"];
    return d;
  }();
  return data;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16384) return 0;  // real templates are a few KB; longer inputs only slow the search
  const std::string_view src(reinterpret_cast<const char*>(data), size);
  pl::chat::RenderOptions options;
  options.limits.max_steps = 100'000;
  options.limits.max_output_bytes = 1 << 20;
  options.limits.max_memory_bytes = 8 << 20;
  options.now = std::tm{};
  try {
    const pl::chat::Template t = pl::chat::Template::parse(src);
    (void)t.render(jinja_context(), options);
  } catch (const pl::Error&) {
  }
  try {
    const pl::chat::GoTemplate g = pl::chat::GoTemplate::parse(src);
    (void)g.identifiers();
    (void)g.render(go_data(), options.limits);
    (void)g.cut_after_response().render(go_data(), options.limits);
  } catch (const pl::Error&) {
  }
  return 0;
}
