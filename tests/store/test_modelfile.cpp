#include <gtest/gtest.h>

#include <random>

#include "store/modelfile.h"
#include "store/store.h"
#include "test_util.h"

using nlohmann::json;
using pl::store::CreateRequest;
using pl::store::normalize_parameters;
using pl::store::parse_modelfile;
using pl::store::quote_modelfile_value;
using pl::store::write_modelfile;
using pl::test::error_of;

TEST(Modelfile, ParsesEveryInstruction) {
  const char* text = R"MF(# A comment, then a blank line

from llama3.2
PARAMETER num_ctx 4096
parameter temperature 0.7
PARAMETER stop "<|eot_id|>"
PARAMETER stop <|end|>
PARAMETER use_mmap false
PARAMETER num_parallel 4
Parameter Top_K 20
TEMPLATE """{{ if .System }}<|system|>
{{ .System }}  
{{ end }}<|user|> "{{ .Prompt }}" """
SYSTEM "You are Mario from "Super Mario Bros"."
MESSAGE user Is Toronto in Canada?
MESSAGE assistant """yes,
it is"""
LICENSE """MIT
licence"""
LICENSE second
  # an indented comment
REQUIRES 0.6.0
)MF";
  CreateRequest r = parse_modelfile(text);
  EXPECT_EQ(r.from, "llama3.2");
  EXPECT_EQ(r.parameters["num_ctx"], 4096);
  EXPECT_TRUE(r.parameters["num_ctx"].is_number_integer());
  EXPECT_DOUBLE_EQ(r.parameters["temperature"].get<double>(), 0.7);
  EXPECT_EQ(r.parameters["stop"], json::array({"<|eot_id|>", "<|end|>"}));
  EXPECT_EQ(r.parameters["use_mmap"], false);
  EXPECT_EQ(r.parameters["num_parallel"], 4);
  EXPECT_EQ(r.parameters["top_k"], 20);
  ASSERT_TRUE(r.template_text);
  // Inner spacing and line breaks are kept exactly.
  EXPECT_EQ(*r.template_text, "{{ if .System }}<|system|>\n{{ .System }}  \n{{ end }}<|user|> \"{{ .Prompt }}\" ");
  ASSERT_TRUE(r.system);
  EXPECT_EQ(*r.system, "You are Mario from \"Super Mario Bros\".");
  ASSERT_TRUE(r.messages);
  EXPECT_EQ(*r.messages, json::parse(R"([{"role":"user","content":"Is Toronto in Canada?"},
                                         {"role":"assistant","content":"yes,\nit is"}])"));
  ASSERT_TRUE(r.license);
  EXPECT_EQ(*r.license, (std::vector<std::string>{"MIT\nlicence", "second"}));
}

TEST(Modelfile, MinimalAndLineEndings) {
  CreateRequest r = parse_modelfile("\xEF\xBB\xBF" "FROM ./model.gguf\r\nSYSTEM \"\"\"a\r\nb\"\"\"\r\n");
  EXPECT_EQ(r.from, "./model.gguf");
  EXPECT_EQ(*r.system, "a\nb");
  EXPECT_FALSE(r.template_text);
  EXPECT_FALSE(r.license);
  EXPECT_FALSE(r.messages);
  EXPECT_TRUE(r.parameters.empty());

  // A value ends at the line end; '#' inside a value is not a comment.
  r = parse_modelfile("FROM x\nSYSTEM  say # twice  \nTEMPLATE \"\"\"\"\"\"\n");
  EXPECT_EQ(*r.system, "say # twice");
  EXPECT_EQ(*r.template_text, "");
  r = parse_modelfile("FROM \"/path with spaces/m.gguf\"");
  EXPECT_EQ(r.from, "/path with spaces/m.gguf");
}

TEST(Modelfile, ErrorsNameTheLine) {
  auto err = [](const std::string& text) { return error_of([&] { parse_modelfile(text); }); };
  EXPECT_EQ(err("FROM x\n\nFROB y\n"),
            "line 3: unknown instruction 'FROB' (expected FROM, PARAMETER, TEMPLATE, SYSTEM, MESSAGE, LICENSE)");
  EXPECT_EQ(err("FROM x\nPARAMETER foo 1\n"), "line 2: unknown parameter 'foo'");
  EXPECT_EQ(err("FROM x\nPARAMETER num_ctx big\n"), "line 2: parameter 'num_ctx' expects an integer, got 'big'");
  EXPECT_EQ(err("FROM x\nPARAMETER num_ctx 1.5\n"), "line 2: parameter 'num_ctx' expects an integer, got '1.5'");
  EXPECT_EQ(err("FROM x\nPARAMETER temperature hot\n"), "line 2: parameter 'temperature' expects a number, got 'hot'");
  EXPECT_EQ(err("FROM x\nPARAMETER use_mmap maybe\n"), "line 2: parameter 'use_mmap' expects true or false, got 'maybe'");
  EXPECT_EQ(err("FROM x\nPARAMETER stop\n"), "line 2: PARAMETER stop needs a value");
  EXPECT_EQ(err("FROM x\nPARAMETER\n"), "line 2: PARAMETER needs a name and a value");
  EXPECT_EQ(err("FROM x\nADAPTER ./lora.gguf\n"), "line 2: ADAPTER is not supported by parallama");
  EXPECT_EQ(err("FROM x\nMESSAGE robot hi\n"), "line 2: MESSAGE role must be system, user or assistant, got 'robot'");
  EXPECT_EQ(err("FROM x\nMESSAGE user\n"), "line 2: MESSAGE user needs a value");
  EXPECT_EQ(err("FROM x\n\nTEMPLATE \"\"\"never\nclosed\n"), "line 3: unterminated \"\"\" string");
  EXPECT_EQ(err("FROM x\nSYSTEM \"open\n"), "line 2: unterminated \" string");
  EXPECT_EQ(err("FROM x\nSYSTEM\n"), "line 2: SYSTEM needs a value");
  EXPECT_EQ(err("FROM x\nFROM y\n"), "line 2: FROM given twice");
  EXPECT_EQ(err("FROM x\n123 abc\n").substr(0, 29), "line 2: expected an instructi");
  EXPECT_EQ(err("SYSTEM hi\n# no from\n"), "no FROM line in the Modelfile");
  EXPECT_EQ(err(""), "no FROM line in the Modelfile");
  // The line after a multi-line value is counted right.
  EXPECT_EQ(err("FROM x\nSYSTEM \"\"\"a\nb\nc\"\"\"\nBAD\n").substr(0, 7), "line 5:");
}

TEST(Modelfile, NormalizesJsonParameters) {
  json p = normalize_parameters(json::parse(
      R"({"num_ctx":"2048","top_k":40.0,"temperature":1,"stop":"</s>","use_mmap":"true","seed":null})"));
  EXPECT_EQ(p, json::parse(R"({"num_ctx":2048,"top_k":40,"temperature":1.0,"stop":["</s>"],"use_mmap":true})"));
  EXPECT_TRUE(p["top_k"].is_number_integer());
  EXPECT_TRUE(p["temperature"].is_number_float());
  EXPECT_EQ(normalize_parameters(json::object()), json::object());
  EXPECT_EQ(error_of([] { normalize_parameters(json::parse(R"({"num_ctx":1.5})")); }),
            "parameter 'num_ctx' expects an integer, got 1.5");
  EXPECT_EQ(error_of([] { normalize_parameters(json::parse(R"({"nope":1})")); }), "unknown parameter 'nope'");
  EXPECT_EQ(error_of([] { normalize_parameters(json::parse(R"({"stop":[1]})")); }),
            "parameter 'stop' expects a list of strings, got [1]");
  EXPECT_EQ(error_of([] { normalize_parameters(json::parse(R"({"use_mmap":1})")); }),
            "parameter 'use_mmap' expects a bool, got 1");
  EXPECT_EQ(error_of([] { normalize_parameters(json::array()); }), "parameters must be a JSON object");
  // The table: every option that has an effect and is not the server's own goes to the runner.
  for (const auto& [name, opt] : pl::store::ollama_options())
    EXPECT_TRUE(opt.effective || opt.runner_name == nullptr) << name;
  EXPECT_EQ(pl::store::ollama_options().at("num_parallel").type, pl::store::OptionType::Int);
  EXPECT_STREQ(pl::store::ollama_options().at("num_predict").runner_name, "n_predict");
  EXPECT_STREQ(pl::store::option_type_name(pl::store::ollama_options().at("stop").type), "string_list");
}

// Random Modelfiles built from real fragments either parse or throw pl::Error; nothing else.
TEST(Modelfile, RandomInputOnlyThrowsPlError) {
  const std::vector<std::string> pieces = {"FROM ", "from", "PARAMETER ", "stop ", "num_ctx ", "temperature ",
                                           "TEMPLATE ", "SYSTEM ", "MESSAGE ", "user ", "LICENSE ", "\"\"\"", "\"",
                                           "\n", "\r\n", " ", "\t", "#", "x", "1", "0.5", "true", "\xEF\xBB\xBF",
                                           std::string("\0", 1), "ADAPTER ", "\xff"};
  std::mt19937 rng(7);
  int n_parsed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    for (int n = static_cast<int>(rng() % 24); n > 0; --n) text += pieces[rng() % pieces.size()];
    try {
      parse_modelfile(text);
      ++n_parsed;
    } catch (const pl::Error&) {
    }
  }
  EXPECT_GT(n_parsed, 0);
}

// Values that need care: line breaks, quotes of every count and place, backslashes
// (written and read as they are: a Modelfile has no escapes), edge blanks, '#'.
const std::vector<std::string> kTrickyValues = {
    "plain",
    "multi\nline",
    "\nstarts and ends with a line break\n",
    "say \"hi\"",
    "\"quoted\"",
    "\"",
    "\"\"",
    "a \"\"\" b",
    "ends in \"\"\"",
    "\"\"\" starts with three",
    "x\"\"\"y\n\"\"\"z",
    "a \"\"\" b\nsecond \"line\"",
    "line ends with a quote\"\nnext",
    "back\\slash \\n \\\" \\",
    "C:\\path\\",
    "  edge blanks  ",
    "\ttab",
    "# not a comment",
    "{{ if .System }}<|system|>\n{{ .System }}  \n{{ end }}<|user|> \"{{ .Prompt }}\" ",
    "",
    "\\n\\n",
};

TEST(ModelfileWriter, EveryValueReadsBackUnchanged) {
  for (const std::string& v : kTrickyValues) {
    CreateRequest r;
    r.from = "/models/blobs/sha256-abc";
    r.template_text = v;
    r.system = v;
    r.license = std::vector<std::string>{v, "second " + v};
    r.messages = json::array({{{"role", "user"}, {"content", v}}, {{"role", "assistant"}, {"content", v}}});
    r.parameters = {{"stop", json::array({v, "<|end|>"})}, {"num_ctx", 2048}, {"temperature", 0.25},
                    {"use_mmap", false}};
    const std::string text = write_modelfile(r);
    SCOPED_TRACE(text);
    CreateRequest back = parse_modelfile(text);
    EXPECT_EQ(back.from, r.from);
    EXPECT_EQ(back.template_text, r.template_text);
    EXPECT_EQ(back.system, r.system);
    EXPECT_EQ(back.license, r.license);
    EXPECT_EQ(back.messages, r.messages);
    EXPECT_EQ(back.parameters, r.parameters);
    // And again: a second round changes nothing (the old writer added a level of escapes per round).
    EXPECT_EQ(write_modelfile(back), text);
    EXPECT_EQ(text.find("# The next"), std::string::npos);
  }
}

TEST(ModelfileWriter, UsesTheFormsOllamaWrites) {
  EXPECT_EQ(quote_modelfile_value("You are Mario.", true).text, "\"\"\"You are Mario.\"\"\"");
  EXPECT_EQ(quote_modelfile_value("<|im_end|>", false).text, "\"<|im_end|>\"");
  EXPECT_EQ(quote_modelfile_value("multi\nline", false).text, "\"\"\"multi\nline\"\"\"");
  EXPECT_EQ(quote_modelfile_value("\"\"x", false).text, "\"\"\"\"\"x\"\"\"");
  CreateRequest r;
  r.from = "/path with spaces/m.gguf";
  r.messages = json::array({{{"role", "assistant"}, {"content", "multi\nline"}}});
  EXPECT_EQ(write_modelfile(r), "FROM /path with spaces/m.gguf\nMESSAGE assistant \"\"\"multi\nline\"\"\"\n");
  r.from = " lead";
  EXPECT_EQ(write_modelfile(r).substr(0, 13), "FROM \" lead\"\n");
}

TEST(ModelfileWriter, SaysSoWhenAValueCannotBeQuoted) {
  // A line, not the last, ending in """: every quoted form would end there.
  for (const std::string v : {"one\"\"\"\ntwo", "a\r\nb"}) {
    EXPECT_FALSE(quote_modelfile_value(v, true).exact) << v;
    CreateRequest r;
    r.from = "m";
    r.system = v;
    const std::string text = write_modelfile(r);
    EXPECT_NE(text.find("# The next SYSTEM has a line ending in"), std::string::npos) << text;
  }
}
