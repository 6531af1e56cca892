// Errors name the line and column; hostile templates stop at the limits
// (steps, output size, memory, macro recursion, nesting) instead of hanging
// or exhausting memory.
#include <gtest/gtest.h>

#include <string>

#include "chat/jinja.h"
#include "core/error.h"
#include "test_util.h"

namespace pl::chat {
namespace {

std::string parse_error(const std::string& src) {
  try {
    Template::parse(src);
  } catch (const pl::Error& e) {
    return e.what();
  }
  return "no error";
}

std::string render_error(const std::string& src, const nlohmann::ordered_json& ctx = nlohmann::ordered_json::object(),
                         const RenderOptions& o = {}) {
  try {
    Template::parse(src).render(ctx, o);
  } catch (const pl::Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(JinjaErrors, SyntaxErrorsNameLineAndColumn) {
  EXPECT_EQ(parse_error("ab\n  {% if x %}\n{{ y }}"),
            "line 3, column 8: unexpected end of template: the 'if' block opened at line 2, column 3 is not closed "
            "(expected 'elif', 'else' or 'endif')");
  EXPECT_EQ(parse_error("{{ 1 + }}"), "line 1, column 8: expected an expression, got '}}'");
  EXPECT_EQ(parse_error("x\n{{ a | nosuch }}"), "line 2, column 8: no filter named 'nosuch'");
  EXPECT_EQ(parse_error("{{ a is nosuch }}"), "line 1, column 9: no test named 'nosuch'");
  EXPECT_EQ(parse_error("{% endfor %}"), "line 1, column 1: unexpected 'endfor'");
  EXPECT_EQ(parse_error("{% include 'x' %}"), "line 1, column 1: the 'include' tag is not supported in chat templates");
  EXPECT_EQ(parse_error("{% frobnicate %}"), "line 1, column 1: unknown tag 'frobnicate'");
  EXPECT_EQ(parse_error("{{ 'abc }}"), "line 1, column 4: unterminated string literal");
  EXPECT_EQ(parse_error("{# open"), "line 1, column 1: missing end of comment tag");
  EXPECT_EQ(parse_error("{{ x"), "line 1, column 1: unexpected end of template, expected '}}'");
  EXPECT_EQ(parse_error("{% break %}"), "line 1, column 1: 'break' outside of a loop");
  EXPECT_EQ(parse_error("{{ a $ b }}"), "line 1, column 6: unexpected character '$'");
  // Columns count characters, not bytes.
  EXPECT_EQ(parse_error("é{{ ) }}"), "line 1, column 5: expected an expression, got ')'");
}

TEST(JinjaErrors, RenderErrorsNameLineAndColumn) {
  EXPECT_EQ(render_error("ok\n{{ raise_exception('bad roles') }}"), "line 2, column 4: bad roles");
  EXPECT_EQ(render_error("{{ 1 + 'a' }}"), "line 1, column 6: unsupported operand type(s) for +: 'int' and 'str'");
  EXPECT_EQ(render_error("{{ nope() }}"), "line 1, column 4: 'nope' is undefined");
  EXPECT_EQ(render_error("{{ 1 / 0 }}"), "line 1, column 6: division by zero");
  EXPECT_EQ(render_error("{{ [1]|tojson }}{{ undefined_x|tojson }}"),
            "line 1, column 32: Object of type Undefined is not JSON serializable");
  EXPECT_EQ(render_error("{{ 'x' in none }}"), "line 1, column 4: argument of type 'NoneType' is not iterable");
  EXPECT_EQ(render_error("{% set a, b = [1] %}"), "line 1, column 1: expected 2 values to unpack, got 1");
  EXPECT_EQ(render_error("{% set x = 1 %}{% set x.y = 2 %}"),
            "line 1, column 16: cannot assign attribute 'y' on 'x': not a namespace");
  EXPECT_EQ(render_error("{{ 'a'.split('') }}"), "line 1, column 7: empty separator");
  EXPECT_EQ(render_error("{{ m.x }}", {{"m", 1}}), "no error");  // attribute of a non-object is undefined
}

TEST(JinjaErrors, UndefinedIsLenient) {
  const nlohmann::ordered_json ctx = {{"messages", nlohmann::ordered_json::array()}};
  EXPECT_EQ(Template::parse("[{{ messages[0]['role'] }}][{{ nothing.at.all }}][{{ x|length }}]").render(ctx), "[][][0]");
  EXPECT_EQ(Template::parse("{{ messages[0]['role'] is defined }}").render(ctx), "False");
}

TEST(JinjaLimits, NestedLoopsStopAtTheStepLimit) {
  RenderOptions o;
  o.limits.max_steps = 1'000'000;
  const double t0 = test::thread_cpu_seconds();
  const std::string err =
      render_error("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", {}, o);
  EXPECT_NE(err.find("step limit"), std::string::npos) << err;
  EXPECT_LT(test::thread_cpu_seconds() - t0, 5.0);  // ~0.1 s; 10^10 steps would take hours
  // A loop that would run forever cannot be written (no while); range() is sized before it allocates.
  EXPECT_NE(render_error("{{ range(1000000000000)|length }}").find("step limit"), std::string::npos);
}

TEST(JinjaLimits, HugeOutputStops) {
  RenderOptions o;
  o.limits.max_output_bytes = 1 << 20;
  EXPECT_NE(render_error("{% for i in range(100000) %}{{ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' }}{% endfor %}", {}, o)
                .find("template output exceeded 1048576 bytes"),
            std::string::npos);
  // A single huge string, and one doubled until it is huge, stop before they exist.
  EXPECT_NE(render_error("{{ 'x' * 100000000000 }}", {}, o).find("exceeded"), std::string::npos);
  EXPECT_NE(render_error("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
                         "{% endfor %}",
                         {}, o)
                .find("exceeded"),
            std::string::npos);
}

TEST(JinjaLimits, MemoryIsBounded) {
  RenderOptions o;
  o.limits.max_memory_bytes = 8 << 20;
  // Many distinct 1 MB strings kept alive in a list: no output, but memory.
  const std::string err = render_error(
      "{% set ns = namespace(l=[]) %}{% for i in range(100) %}{% set ns.l = ns.l + ['x' * 1000000] %}{% endfor %}", {},
      o);
  EXPECT_NE(err.find("bytes of memory"), std::string::npos) << err;
}

TEST(JinjaLimits, RecursionAndNestingAreBounded) {
  EXPECT_EQ(render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
            "line 1, column 20: macro calls nested deeper than 32 levels");
  EXPECT_EQ(render_error("{% set ns = namespace(v=[]) %}{% for i in range(1000) %}{% set ns.v = [ns.v] %}{% endfor %}"),
            "line 1, column 57: value nested deeper than 128 levels");
  // A namespace holding itself: usable, unprintable, and freed after the render (no leak under ASan).
  EXPECT_EQ(Template::parse("{% set ns = namespace(a=1) %}{% set ns.me = ns %}{{ ns.me.me.me.a }}").render({}), "1");
  EXPECT_EQ(render_error("{% set ns = namespace(a=1) %}{% set ns.l = [ns] %}{{ ns }}"),
            "line 1, column 51: value nested deeper than 128 levels");
  std::string deep = "{{ " + std::string(200, '(') + "1" + std::string(200, ')') + " }}";
  EXPECT_NE(parse_error(deep).find("nested deeper than 64 levels"), std::string::npos);
  std::string blocks;
  for (int i = 0; i < 100; ++i) blocks += "{% if true %}";
  EXPECT_NE(parse_error(blocks).find("blocks nested deeper than 64 levels"), std::string::npos);
  std::string nots = "{{ " + std::string(5000, '-') + "1 }}";
  EXPECT_NE(parse_error(nots).find("nested deeper"), std::string::npos);
}

}  // namespace
}  // namespace pl::chat
