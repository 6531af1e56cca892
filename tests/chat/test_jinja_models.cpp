// The chat templates real models ship (tests/chat/templates/*.jinja, verbatim
// from their tokenizer_config.json, or from a GGUF for phi3) rendered over
// the conversations in tests/chat/contexts/ to the exact prompts in
// tests/chat/expected/, which were derived by hand from each template; some
// cases expect the template's own error (raise_exception, or a Python error
// the template runs into). cases.json lists them.
#include <gtest/gtest.h>

#include "chat_test_util.h"
#include "core/error.h"

namespace pl::chat::test {
namespace {

TEST(JinjaModels, RenderRealTemplatesToExactPrompts) {
  const auto cases = read_json("cases.json");
  ASSERT_GE(cases.size(), 30u);
  for (const auto& c : cases) {
    const std::string name = c["template"].get<std::string>() + " + " + c["context"].get<std::string>();
    SCOPED_TRACE(name);
    auto ctx = read_json("contexts/" + c["context"].get<std::string>());
    for (const auto& [k, v] : c["vars"].items()) ctx[k] = v;
    const Template t = Template::parse(read("templates/" + c["template"].get<std::string>()));
    if (c.contains("error")) {
      try {
        t.render(ctx, fixed_clock());
        ADD_FAILURE() << "expected an error";
      } catch (const pl::Error& e) {
        EXPECT_NE(std::string(e.what()).find(c["error"].get<std::string>()), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).rfind("line ", 0), 0u) << e.what();
      }
      continue;
    }
    EXPECT_EQ(t.render(ctx, fixed_clock()), read("expected/" + c["expected"].get<std::string>()));
  }
}

// Every model template renders its system/multi-turn conversation well under the limits.
TEST(JinjaModels, RenderingIsCheap) {
  auto ctx = read_json("contexts/tools.json");
  ctx["bos_token"] = "<s>";
  ctx["eos_token"] = "</s>";
  RenderOptions o = fixed_clock();
  o.limits.max_steps = 20'000;
  for (const char* name : {"llama3.1.jinja", "llama3.2.jinja", "qwen2.5.jinja", "qwen3.jinja", "mistral-v0.3.jinja"}) {
    SCOPED_TRACE(name);
    EXPECT_NO_THROW(Template::parse(read(std::string("templates/") + name)).render(ctx, o));
  }
}

}  // namespace
}  // namespace pl::chat::test
