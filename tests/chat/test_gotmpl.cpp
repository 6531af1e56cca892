// Go text/template semantics (Ollama's Modelfile TEMPLATE), one construct at a
// time, with expected text derived from the text/template documentation.
#include <gtest/gtest.h>

#include <string>

#include "chat/gotmpl.h"
#include "core/error.h"

namespace pl::chat {
namespace {

using Json = nlohmann::ordered_json;

std::string render(const std::string& src, const Json& data = Json::object(), const RenderLimits& limits = {}) {
  return GoTemplate::parse(src).render(data, limits);
}

std::string error_of(const std::string& src, const Json& data = Json::object(), const RenderLimits& limits = {}) {
  try {
    render(src, data, limits);
  } catch (const pl::Error& e) {
    return e.what();
  }
  return "no error";
}

const Json kData = Json::parse(R"({"A": "x", "N": 2, "S": "y", "F": 1000000.0, "G": 2.5, "H": 3.0,
  "L": [1, 2, 3, 4, 5], "E": [], "M": {"b": 1, "a": 2}, "L2": [{"Name": "n1"}],
  "O": {"b": "<tag>&", "a": [1, 2.5, null], "c": true},
  "tool_calls": [{"function": {"name": "f", "arguments": {"b": 2, "a": 1}}}]})");

TEST(GoTemplate, TextFieldsAndTrimming) {
  EXPECT_EQ(render("[{{ .A }}][{{ .Missing }}]", kData), "[x][<no value>]");
  EXPECT_EQ(render("a  {{- .A -}}  b", kData), "axb");
  EXPECT_EQ(render("a\n  {{- .A }}\n  b", kData), "ax\n  b");
  EXPECT_EQ(render("{{-3}}|{{ -3 }}"), "-3|-3");  // "{{-" without a space is a negative number
  EXPECT_EQ(render("a{{/* c */}}b"), "ab");
  EXPECT_EQ(render("a  {{- /* c */ -}}  b"), "ab");
  EXPECT_EQ(render("{{ \"}}\" }}{{ `raw\\n` }}"), "}}raw\\n");
}

TEST(GoTemplate, Control) {
  const char* chain = "{{ if eq .N 1 }}one{{ else if eq .N 2 }}two{{ else }}many{{ end }}";
  EXPECT_EQ(render(chain, kData), "two");
  EXPECT_EQ(render(chain, Json{{"N", 7}}), "many");
  EXPECT_EQ(render("{{ range $i, $e := .L }}{{ $i }}={{ $e }};{{ end }}", kData), "0=1;1=2;2=3;3=4;4=5;");
  EXPECT_EQ(render("{{ range $k, $v := .M }}{{ $k }}{{ $v }}{{ end }}", kData), "a2b1");  // maps in key order
  EXPECT_EQ(render("{{ range .E }}x{{ else }}empty{{ end }}", kData), "empty");
  EXPECT_EQ(render("{{ range .Missing }}x{{ else }}none{{ end }}", kData), "none");
  EXPECT_EQ(render("{{ range 3 }}{{ . }}{{ end }}"), "012");
  EXPECT_EQ(render("{{ range .L }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ if eq . 4 }}{{ break }}{{ end }}{{ . }}{{ end }}",
                   kData),
            "13");
  EXPECT_EQ(render("{{ with .A }}[{{ . }}]{{ else }}none{{ end }}|{{ with .Missing }}x{{ else }}none{{ end }}", kData),
            "[x]|none");
  EXPECT_EQ(render("{{ with .Missing }}a{{ else with .A }}b{{ . }}{{ end }}", kData), "bx");
}

TEST(GoTemplate, Variables) {
  EXPECT_EQ(render("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"), "2");
  EXPECT_EQ(render("{{ $y := 1 }}{{ if true }}{{ $y := 2 }}{{ $y }}{{ end }}{{ $y }}"), "21");
  EXPECT_EQ(render("{{ range .L2 }}{{ .Name }}{{ $.A }}{{ end }}", kData), "n1x");
  EXPECT_EQ(render("{{ $m := .M }}{{ $m.a }}", kData), "2");
}

TEST(GoTemplate, Functions) {
  EXPECT_EQ(render("{{ and 1 0 2 }}|{{ or 0 \"\" \"z\" }}|{{ not 0 }}|{{ and .Missing .Boom.Crash }}"), "0|z|true|<no value>");
  EXPECT_EQ(render("{{ len .L }}|{{ index .L 1 }}|{{ slice .L 1 3 }}|{{ index .M \"a\" }}|{{ slice \"hello\" 1 3 }}", kData),
            "5|2|[2,3]|2|el");
  EXPECT_EQ(render("{{ lt 1 2 }}{{ ge \"b\" \"a\" }}{{ eq .S \"x\" \"y\" }}{{ ne 1 2 }}{{ eq .N 2.0 }}", kData),
            "truetruetruetruetrue");
  EXPECT_EQ(render("{{ print \"a\" 1 2 \"b\" }}|{{ printf \"%s=%d %q %v %t\" \"k\" 5 \"q\\\"\" 1.5 true }}|{{ println \"a\" 1 }}"),
            "a1 2b|k=5 \"q\\\"\" 1.5 true|a 1\n");
  EXPECT_EQ(render("{{ json .O }}", kData), R"({"b":"\u003ctag\u003e\u0026","a":[1,2.5,null],"c":true})");
  EXPECT_EQ(render("{{ .S | printf \"[%s]\" }}|{{ \"x\" | eq \"x\" }}", kData), "[y]|true");
  EXPECT_EQ(render("{{ (index .L2 0).Name }}", kData), "n1");
  EXPECT_EQ(render("{{ .F }}|{{ .G }}|{{ .H }}|{{ 'a' }}|{{ 0x10 }}|{{ 1e3 }}", kData), "1e+06|2.5|3|97|16|1000");
}

// Ollama's names on JSON keys: .ToolCalls finds "tool_calls", and objects print as JSON.
TEST(GoTemplate, GoNamesFindJsonKeys) {
  EXPECT_EQ(render("{{ range .ToolCalls }}{{ .Function.Name }} {{ .Function.Arguments }}{{ end }}", kData),
            R"(f {"b":2,"a":1})");
}

TEST(GoTemplate, ParseErrorsNameLineAndColumn) {
  auto parse_error = [](const std::string& src) {
    try {
      GoTemplate::parse(src);
    } catch (const pl::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(parse_error("a\n{{ $x }}"), "line 2, column 4: undefined variable \"$x\"");
  EXPECT_EQ(parse_error("{{ foo 1 }}"), "line 1, column 4: function \"foo\" not defined");
  EXPECT_EQ(parse_error("{{ .A "), "line 1, column 1: unclosed action");
  EXPECT_EQ(parse_error("x{{ else }}"), "line 1, column 2: unexpected {{else}}");
  EXPECT_EQ(parse_error("{{ if .A }}x"), "line 1, column 1: unexpected end of template: {{if}} is not closed by {{end}}");
  EXPECT_EQ(parse_error("{{ break }}"), "line 1, column 1: {{break}} outside {{range}}");
  EXPECT_EQ(parse_error("{{ template \"x\" }}"), "line 1, column 1: {{template}} is not supported in chat templates");
  EXPECT_EQ(parse_error("{{/* open }}"), "line 1, column 1: unclosed comment");
  EXPECT_EQ(parse_error("{{ (1 }}"), "line 1, column 1: unclosed left paren");
  EXPECT_EQ(parse_error("{{ \"a\\q\" }}"), "line 1, column 4: invalid escape in quoted string");
}

TEST(GoTemplate, ExecErrorsNameLineAndColumn) {
  EXPECT_EQ(error_of("\n {{ .A.B }}", kData), "line 2, column 5: can't evaluate field B in type string");
  EXPECT_EQ(error_of("{{ index .L 9 }}", kData), "line 1, column 4: error calling index: index out of range: 9");
  EXPECT_EQ(error_of("{{ lt 1 \"a\" }}", kData), "line 1, column 4: error calling lt: incompatible types for comparison");
  EXPECT_EQ(error_of("{{ .A 1 }}", kData), "line 1, column 4: can't give argument to non-function .A");
}

TEST(GoTemplate, Limits) {
  RenderLimits lim;
  lim.max_steps = 100'000;
  EXPECT_NE(error_of("{{ range 1000000000 }}{{ end }}", {}, lim).find("step limit"), std::string::npos);
  lim.max_steps = 100'000'000;
  lim.max_output_bytes = 1 << 20;
  EXPECT_NE(error_of("{{ range 1000000 }}xxxxxxxxxx{{ end }}", {}, lim).find("exceeded 1048576 bytes"), std::string::npos);
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "{{ if true }}";
  EXPECT_NE(error_of(deep).find("nested deeper than 64 levels"), std::string::npos);
}

TEST(GoTemplate, OllamaIdentifiersAndRewrites) {
  const GoTemplate t = GoTemplate::parse("{{ if .System }}{{ .System }}{{ end }}{{ range $i, $m := .Messages }}{{ $m.Role }}{{ end }}");
  EXPECT_EQ(t.identifiers(), (std::vector<std::string>{"$m", "messages", "role", "system"}));
  const Json turn = {{"System", "S"}, {"Prompt", "P"}, {"Response", "R"}};
  const GoTemplate legacy = GoTemplate::parse("<{{ .Prompt }}>{{ if .Response }}[{{ .Response }}]{{ else }}no{{ end }}end");
  EXPECT_EQ(legacy.render(turn), "<P>[R]end");
  // Cut right after the first {{ .Response }}: the rest of its branch, its else and everything after go.
  EXPECT_EQ(legacy.cut_after_response().render(turn), "<P>[R");
  EXPECT_EQ(GoTemplate::parse("{{ .Prompt }}:").with_response_appended().render(turn), "P:R");
}

}  // namespace
}  // namespace pl::chat
