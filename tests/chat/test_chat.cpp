// The chat interface: which template a model uses, the variables each engine
// sees, Ollama's execution of Go templates (messages mode and the legacy
// prompt/response mode), and the fallback.
#include <gtest/gtest.h>

#include <vector>

#include "chat/chat.h"
#include "chat_test_util.h"
#include "core/error.h"
#include "gguf/gguf.h"

namespace pl::chat::test {
namespace {

using Json = nlohmann::ordered_json;

// A context file's messages as chat Messages (null content becomes "").
std::vector<Message> messages_of(const Json& ctx) {
  std::vector<Message> out;
  for (const Json& m : ctx["messages"]) {
    Message msg;
    msg.role = m["role"];
    if (m["content"].is_string()) msg.content = m["content"];
    if (m.contains("thinking")) msg.thinking = m["thinking"];
    if (m.contains("tool_calls")) msg.tool_calls = m["tool_calls"];
    if (m.contains("tool_call_id")) msg.tool_call_id = m["tool_call_id"];
    if (m.contains("name")) msg.tool_name = m["name"];
    out.push_back(std::move(msg));
  }
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const pl::Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Chat, SelectsModelfileThenGgufThenFallback) {
  EXPECT_EQ(select_chat_template("{{ .Prompt }}", "{{ messages }}").kind(), TemplateKind::Go);
  EXPECT_EQ(select_chat_template("", "{{ messages }}").kind(), TemplateKind::Jinja);
  EXPECT_EQ(select_chat_template("", "").kind(), TemplateKind::Fallback);
  EXPECT_EQ(error_of([] { select_chat_template("{{ .Prompt ", ""); }), "Modelfile TEMPLATE: line 1, column 1: unclosed action");
  EXPECT_EQ(error_of([] { select_chat_template("", "{% if %}"); }),
            "tokenizer.chat_template: line 1, column 7: expected an expression, got '%}'");
}

// The phi-3 vocab in testdata carries its chat template in tokenizer.chat_template.
TEST(Chat, ReadsTheTemplateFromGguf) {
  REQUIRE_TESTDATA();
  const GgufFile f = GgufFile::open((pl::test::kTestdata / "vocab" / "ggml-vocab-phi-3.gguf").string());
  const ChatTemplate t = select_chat_template("", f);
  ASSERT_EQ(t.kind(), TemplateKind::Jinja);
  EXPECT_EQ(t.source(), read("templates/phi3.jinja"));
  ChatOptions o;
  o.bos_token = "<s>";
  const Json ctx = read_json("contexts/system_multi.json");
  EXPECT_EQ(t.render(messages_of(ctx), o), read("expected/phi3.system_multi.txt"));
  // A GGUF without a template (the llama-spm vocab) falls back.
  const GgufFile g = GgufFile::open((pl::test::kTestdata / "vocab" / "ggml-vocab-llama-spm.gguf").string());
  EXPECT_EQ(select_chat_template("", g).kind(), TemplateKind::Fallback);
}

TEST(Chat, JinjaContextFollowsTransformers) {
  std::vector<Message> msgs(3);
  msgs[0].role = "user";
  msgs[0].content = "q";
  msgs[1].role = "assistant";
  msgs[1].thinking = "hmm";
  msgs[1].tool_calls = Json::parse(R"([{"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}])");
  msgs[2].role = "tool";
  msgs[2].content = "42";
  msgs[2].tool_name = "f";
  msgs[2].tool_call_id = "call1";
  ChatOptions o;
  o.add_generation_prompt = false;
  o.bos_token = "<s>";
  o.extra_context = {{"enable_thinking", false}};
  const Json ctx = jinja_context(msgs, o);
  EXPECT_EQ(ctx.dump(), R"({"messages":[{"role":"user","content":"q"},)"
                        R"({"role":"assistant","content":"","tool_calls":[{"type":"function","function":{"name":"f","arguments":{"x":1}}}],)"
                        R"("reasoning_content":"hmm","thinking":"hmm"},)"
                        R"({"role":"tool","content":"42","tool_call_id":"call1","name":"f"}],)"
                        R"("tools":null,"add_generation_prompt":false,"bos_token":"<s>","enable_thinking":false})");
}

// Jinja templates through render_chat: the same prompts as the raw-context tests.
TEST(Chat, RendersJinjaTemplatesFromMessages) {
  struct Case {
    const char *tmpl, *ctx, *expected, *bos, *eos;
  };
  for (const Case& c : {Case{"qwen2.5.jinja", "tools.json", "qwen2.5.tools.txt", "", "<|im_end|>"},
                        Case{"llama3.2.jinja", "tools.json", "llama3.2.tools.txt", "<|begin_of_text|>", "<|eot_id|>"},
                        Case{"mistral-v0.3.jinja", "tools.json", "mistral-v0.3.tools.txt", "<s>", "</s>"},
                        Case{"gemma3.jinja", "system_multi.json", "gemma3.system_multi.txt", "<bos>", "<eos>"}}) {
    SCOPED_TRACE(c.tmpl);
    const Json ctx = read_json(std::string("contexts/") + c.ctx);
    ChatOptions o;
    o.tools = ctx.value("tools", Json());
    o.bos_token = c.bos;
    o.eos_token = c.eos;
    o.render = fixed_clock();
    EXPECT_EQ(render_chat(ChatTemplate::jinja(read(std::string("templates/") + c.tmpl)), messages_of(ctx), o),
              read(std::string("expected/") + c.expected));
  }
}

// Ollama's Go templates (go_cases.json): messages-mode templates with tools
// and thinking, legacy prompt/response templates, Ollama's message merging.
TEST(Chat, RendersOllamaGoTemplates) {
  const Json cases = read_json("go_cases.json");
  ASSERT_GE(cases.size(), 10u);
  for (const Json& c : cases) {
    SCOPED_TRACE(c["template"].get<std::string>() + " + " + c["context"].get<std::string>());
    const Json ctx = read_json("contexts/" + c["context"].get<std::string>());
    ChatOptions o;
    if (c.contains("tools")) o.tools = read_json("contexts/" + c["tools"].get<std::string>());
    if (c.contains("think")) o.think = c["think"].get<bool>();
    const ChatTemplate t = ChatTemplate::go(read("templates/" + c["template"].get<std::string>()));
    EXPECT_EQ(render_chat(t, messages_of(ctx), o), read("expected/" + c["expected"].get<std::string>()));
  }
}

TEST(Chat, OllamaMessagesData) {
  const Json ctx = read_json("contexts/merge.json");
  const Json d = ollama_messages_data(messages_of(ctx), ChatOptions{});
  EXPECT_EQ(d["System"], "Be brief.\n\nUse French.");
  ASSERT_EQ(d["Messages"].size(), 2u);  // consecutive system and user messages merge
  EXPECT_EQ(d["Messages"][1]["content"], "Hi\n\nHow are you?");
  EXPECT_TRUE(d["Tools"].is_null());
  EXPECT_EQ(d["IsThinkSet"], false);
}

TEST(Chat, Fallback) {
  const Json ctx = read_json("contexts/system_multi.json");
  EXPECT_EQ(render_chat(ChatTemplate::fallback(), messages_of(ctx), ChatOptions{}),
            "You are a helpful assistant.\n\nHello, how are you?\n\nI'm doing great. How can I help you today?\n\n"
            "I'd like to show off how chat templating works!");
  EXPECT_EQ(render_chat(ChatTemplate::fallback(), messages_of(read_json("contexts/user.json")), ChatOptions{}),
            "Hello, how are you?");
}

TEST(Chat, TemplateErrorsReachTheCaller) {
  const Json ctx = read_json("contexts/system_multi.json");
  const std::string err = error_of([&] { render_chat(ChatTemplate::jinja(read("templates/gemma2.jinja")), messages_of(ctx), {}); });
  EXPECT_EQ(err, "line 1, column 59: System role not supported");
}

}  // namespace
}  // namespace pl::chat::test
