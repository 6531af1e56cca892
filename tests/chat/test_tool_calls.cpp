// Tool-call parsing per format (src/chat/tool_calls.h).
#include <gtest/gtest.h>

#include "chat/tool_calls.h"
#include "chat_test_util.h"

namespace pl::chat {
namespace {

using ojson = nlohmann::ordered_json;

ParsedToolCalls must_parse(std::string_view s, ToolFormat f) {
  auto r = parse_tool_calls(s, f);
  EXPECT_TRUE(r.has_value()) << s;
  return r.value_or(ParsedToolCalls{});
}

TEST(ToolCalls, FormatFromTemplate) {
  EXPECT_EQ(tool_format_of("{%- for t in tools %}<tools>{{ t | tojson }}</tools>{% endfor %} <tool_call>"),
            ToolFormat::Hermes);
  EXPECT_EQ(tool_format_of("{{- '[AVAILABLE_TOOLS] ' }} ... [TOOL_CALLS]"), ToolFormat::Mistral);
  EXPECT_EQ(tool_format_of("<|start_header_id|>ipython<|end_header_id|> <|python_tag|>"), ToolFormat::Llama3);
  EXPECT_EQ(tool_format_of("{{ .Prompt }}"), ToolFormat::Llama3);
}

// The templates real models ship (tests/chat/templates) pick their own format.
TEST(ToolCalls, FormatOfShippedTemplates) {
  using test::read;
  EXPECT_EQ(tool_format_of(read("templates/qwen2.5.jinja")), ToolFormat::Hermes);
  EXPECT_EQ(tool_format_of(read("templates/qwen3.jinja")), ToolFormat::Hermes);
  EXPECT_EQ(tool_format_of(read("templates/ollama-qwen3.gotmpl")), ToolFormat::Hermes);
  EXPECT_EQ(tool_format_of(read("templates/mistral-v0.3.jinja")), ToolFormat::Mistral);
  EXPECT_EQ(tool_format_of(read("templates/llama3.1.jinja")), ToolFormat::Llama3);
  EXPECT_EQ(tool_format_of(read("templates/llama3.2.jinja")), ToolFormat::Llama3);
  EXPECT_EQ(tool_format_of(read("templates/ollama-llama3.2.gotmpl")), ToolFormat::Llama3);
}

TEST(ToolCalls, Llama3BareJson) {
  auto r = must_parse("  {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}\n", ToolFormat::Llama3);
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.content, "");
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(r.calls[0].arguments, ojson::parse(R"({"city":"Paris"})"));
}

TEST(ToolCalls, Llama3PythonTagWithContentAndSeveral) {
  auto r = must_parse(
      "Let me check.<|python_tag|>{\"name\": \"a\", \"parameters\": {\"q\": \"x;y\"}}; "
      "{\"name\": \"b\", \"arguments\": {\"n\": {\"deep\": [1, 2, {\"k\": null}]}}}",
      ToolFormat::Llama3);
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.content, "Let me check.");
  EXPECT_EQ(r.calls[0].name, "a");
  EXPECT_EQ(r.calls[0].arguments["q"], "x;y");
  EXPECT_EQ(r.calls[1].name, "b");
  EXPECT_EQ(r.calls[1].arguments["n"]["deep"][2]["k"], nullptr);
}

TEST(ToolCalls, Llama3ArrayAndStringArguments) {
  auto r = must_parse(R"([{"name": "a", "parameters": "{\"x\": 1}"}, {"name": "b"}])", ToolFormat::Llama3);
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].arguments, ojson::parse(R"({"x":1})"));
  EXPECT_EQ(r.calls[1].arguments, ojson::object());
}

TEST(ToolCalls, Llama3PlainTextIsNoCall) {
  EXPECT_FALSE(parse_tool_calls("The weather in Paris is sunny.", ToolFormat::Llama3));
  EXPECT_FALSE(parse_tool_calls("Answer: {\"name\": \"a\"}", ToolFormat::Llama3));  // prose first, no tag
  EXPECT_FALSE(parse_tool_calls("{\"city\": \"Paris\"}", ToolFormat::Llama3));     // no name
  EXPECT_FALSE(parse_tool_calls("", ToolFormat::Llama3));
}

TEST(ToolCalls, HermesSeveralWithContent) {
  auto r = must_parse(
      "<think>\nneed two lookups\n</think>\n\nChecking both.\n"
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": {\"region\": \"Europe\", \"offsets\": [1, 2]}}}"
      "\n</tool_call>",
      ToolFormat::Hermes);
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.content, "<think>\nneed two lookups\n</think>\n\nChecking both.");
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(r.calls[0].arguments["city"], "Paris");
  EXPECT_EQ(r.calls[1].name, "get_time");
  EXPECT_EQ(r.calls[1].arguments["tz"]["offsets"][1], 2);
}

TEST(ToolCalls, HermesUnclosedLastCall) {
  auto r = must_parse("<tool_call>{\"name\":\"f\",\"arguments\":{}}", ToolFormat::Hermes);
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].name, "f");
}

TEST(ToolCalls, HermesKeepsArgumentOrder) {
  auto r = must_parse("<tool_call>{\"name\":\"f\",\"arguments\":{\"z\":1,\"a\":2}}</tool_call>", ToolFormat::Hermes);
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].arguments.dump(), R"({"z":1,"a":2})");
}

TEST(ToolCalls, HermesMalformed) {
  EXPECT_FALSE(parse_tool_calls("no calls here", ToolFormat::Hermes));
  EXPECT_FALSE(parse_tool_calls("<tool_call>{\"name\": \"f\", \"arguments\": {</tool_call>", ToolFormat::Hermes));
  EXPECT_FALSE(parse_tool_calls("<tool_call>{\"arguments\": {}}</tool_call>", ToolFormat::Hermes));
  EXPECT_FALSE(parse_tool_calls("<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>", ToolFormat::Hermes));
  EXPECT_FALSE(parse_tool_calls("<tool_call>{\"name\":\"f\"}</tool_call> and then prose", ToolFormat::Hermes));
}

TEST(ToolCalls, MistralSeveralWithContent) {
  auto r = must_parse(
      "Sure. [TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"x\": {\"y\": [true]}}}, "
      "{\"name\": \"b\", \"arguments\": {}}]",
      ToolFormat::Mistral);
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.content, "Sure.");
  EXPECT_EQ(r.calls[0].arguments["x"]["y"][0], true);
  EXPECT_EQ(r.calls[1].name, "b");
}

TEST(ToolCalls, MistralNameArgsForm) {
  auto r = must_parse("Ok.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]get_time[ARGS]{}",
                      ToolFormat::Mistral);
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.content, "Ok.");
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(r.calls[0].arguments["city"], "Paris");
  EXPECT_EQ(r.calls[1].name, "get_time");
  EXPECT_FALSE(parse_tool_calls("[TOOL_CALLS]get_weather[ARGS]{\"city\": ", ToolFormat::Mistral));
  EXPECT_FALSE(parse_tool_calls("[TOOL_CALLS][ARGS]{}", ToolFormat::Mistral));
  EXPECT_FALSE(parse_tool_calls("[TOOL_CALLS]get_weather", ToolFormat::Mistral));
}

TEST(ToolCalls, MistralMalformed) {
  EXPECT_FALSE(parse_tool_calls("[TOOL_CALLS] [{\"name\": \"a\", ", ToolFormat::Mistral));
  EXPECT_FALSE(parse_tool_calls("[TOOL_CALLS] []", ToolFormat::Mistral));
  EXPECT_FALSE(parse_tool_calls("[{\"name\": \"a\"}]", ToolFormat::Mistral));  // no tag
}

TEST(ToolCalls, GarbageNeverThrows) {
  const std::string inputs[] = {"\xff\xfe{", "<tool_call>", "<tool_call></tool_call>", "[TOOL_CALLS]",
                                "<|python_tag|>", "<|python_tag|>;;;", std::string(1000, '['),
                                "{\"name\": \"a\", \"parameters\": {\"s\": \"\xc3\x28\"}}"};
  for (const auto& s : inputs)
    for (auto f : {ToolFormat::Llama3, ToolFormat::Hermes, ToolFormat::Mistral})
      EXPECT_NO_THROW({ (void)parse_tool_calls(s, f); }) << s;
  EXPECT_FALSE(parse_tool_calls("<|python_tag|>;;;", ToolFormat::Llama3));
}

}  // namespace
}  // namespace pl::chat
