// Jinja lexer with the settings transformers' apply_chat_template uses:
// trim_blocks (the first newline after a block or comment tag is dropped),
// lstrip_blocks (spaces and tabs before a block or comment tag at the start of
// a line are dropped), keep_trailing_newline off (one final line break of the
// template is dropped), '-' markers ({%- -%} {{- -}} {#- -#}) strip all
// whitespace on that side, '+' ({%+ +%}) turns lstrip/trim off for that tag.
// Line breaks are normalized to "\n" first, as Jinja does with
// str.splitlines().
//
// {% raw %}...{% endraw %} becomes text; comments are dropped. Errors throw
// pl::Error "line L, column C: ...".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pl::chat::jinja {

struct Pos {
  uint32_t line = 1, col = 1;
};

enum class Tok : uint8_t {
  Text,        // text: the data
  VarBegin,    // {{
  VarEnd,      // }}
  BlockBegin,  // {%
  BlockEnd,    // %}
  Name,        // text: identifier
  String,      // text: the unescaped value
  Int,         // i
  Float,       // f
  Op,          // text: operator or bracket
  Eof,
};

struct Token {
  Tok type;
  Pos pos;
  std::string text;
  int64_t i = 0;
  double f = 0;
};

std::vector<Token> lex(std::string_view source);

// "line L, column C: msg" as a pl::Error.
[[noreturn]] void syntax_error(Pos pos, const std::string& msg);

}  // namespace pl::chat::jinja
