// libFuzzer target for what structured output and tool calls read from
// clients and models: the input is a JSON schema, a NUL byte, then a text.
// The schema goes through compile_format (pl::Error or a grammar); the text is
// fed byte by byte through the compiled grammar's matcher, and the whole input
// goes through the tool-call parser of every format. Everything must end in a
// result or pl::Error: a crash, a sanitizer report, a hang or any other
// exception is a bug. Built with ASan+UBSan.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/tool_calls.h"
#include "core/error.h"
#include "grammar/format.h"
#include "grammar/grammar.h"
#include "grammar/matcher.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16384) return 0;  // real schemas are a few KB
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  for (auto fmt : {pl::chat::ToolFormat::Llama3, pl::chat::ToolFormat::Hermes, pl::chat::ToolFormat::Mistral}) {
    try {
      (void)pl::chat::parse_tool_calls(all, fmt);
    } catch (const pl::Error&) {
    }
  }

  const size_t nul = all.find('\0');
  const std::string_view schema_text = all.substr(0, nul);
  const std::string_view text = nul == std::string_view::npos ? std::string_view{} : all.substr(nul + 1);
  const auto schema = nlohmann::ordered_json::parse(schema_text, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return 0;
  std::shared_ptr<const pl::grammar::Format> format;
  try {
    format = pl::grammar::compile_format_ordered(schema);
  } catch (const pl::Error&) {
    return 0;
  }
  pl::grammar::Matcher m(format->grammar());
  std::vector<pl::grammar::Top> cur, next;
  m.start(cur);
  for (size_t i = 0; i < text.size() && !cur.empty(); ++i) {
    const uint32_t flags = m.feed(cur, static_cast<uint8_t>(text[i]), next);
    if ((flags & pl::grammar::kOverflow) != 0) break;
    std::swap(cur, next);
    if (i % 64 == 63) m.compact(cur);
  }
  return 0;
}
