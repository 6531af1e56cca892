// Lexer and parser of Go templates, written from the text/template
// documentation: {{ }} actions with "{{- " / " -}}" trim markers, comments
// that must touch the delimiters, keywords if/else/end/range/with/break/
// continue, pipelines with declarations, and parse-time checks for undefined
// variables and unknown functions (as Go does them).
#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include <fmt/core.h>

#include "chat/gotmpl_ast.h"
#include "chat/pystr.h"
#include "core/error.h"

namespace pl::chat::go {

namespace {

constexpr int kMaxDepth = 64;  // nesting of control structures and parentheses

enum class T : uint8_t { Field, Dot, Var, Ident, String, Number, Char, LParen, RParen, Bar, Declare, Assign, Comma };

struct Tok {
  T type;
  Pos pos;
  std::string text;
  bool space_before = false;
  nlohmann::ordered_json value;  // String, Number, Char
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }

class Parser {
 public:
  explicit Parser(std::string_view src) : src_(src) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
    scopes_.push_back({"$"});
  }

  std::vector<Node> parse_root() {
    std::string term;
    std::vector<Tok> rest;
    Pos term_pos;
    std::vector<Node> root = parse_list(term, rest, term_pos);
    if (!term.empty()) error(term_pos, "unexpected {{" + term + "}}");
    return root;
  }

 private:
  std::string src_;
  std::vector<size_t> line_starts_;
  size_t pos_ = 0;
  bool trim_next_ = false;
  std::vector<std::vector<std::string>> scopes_;  // declared variables
  int range_depth_ = 0;
  int depth_ = 0;

  Pos pos_at(size_t offset) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const size_t line = static_cast<size_t>(it - line_starts_.begin());
    uint32_t col = 1;
    for (size_t i = line_starts_[line - 1]; i < offset && i < src_.size(); ++i) {
      if ((static_cast<unsigned char>(src_[i]) & 0xC0) != 0x80) ++col;
    }
    return {static_cast<uint32_t>(line), col};
  }

  [[noreturn]] static void error(Pos p, const std::string& msg) { pl::fail("line {}, column {}: {}", p.line, p.col, msg); }

  bool declared(const std::string& name) const {
    for (const auto& s : scopes_) {
      if (std::find(s.begin(), s.end(), name) != s.end()) return true;
    }
    return false;
  }

  // Text and actions up to {{end}}, {{else ...}} or the end of the source;
  // `term` gets "end", "else" or "" and `rest` the tokens after the keyword.
  std::vector<Node> parse_list(std::string& term, std::vector<Tok>& rest, Pos& term_pos) {
    std::vector<Node> out;
    while (true) {
      const size_t open = src_.find("{{", pos_);
      const size_t text_end = open == std::string::npos ? src_.size() : open;
      size_t a = pos_, b = text_end;
      if (trim_next_) {
        while (a < b && is_space(src_[a])) ++a;
      }
      trim_next_ = false;
      const bool left_trim = open != std::string::npos && open + 3 < src_.size() && src_[open + 2] == '-' &&
                             is_space(src_[open + 3]);
      if (left_trim) {
        while (b > a && is_space(src_[b - 1])) --b;
      }
      if (b > a) {
        Node t;
        t.kind = Node::Kind::Text;
        t.pos = pos_at(a);
        t.text = src_.substr(a, b - a);
        out.push_back(std::move(t));
      }
      if (open == std::string::npos) {
        pos_ = src_.size();
        term.clear();
        return out;
      }
      const Pos action_pos = pos_at(open);
      size_t p = open + 2 + (left_trim ? 2 : 0);
      if (src_.compare(p, 2, "/*") == 0) {
        skip_comment(p, action_pos);
        continue;
      }
      std::vector<Tok> toks = lex_action(p, action_pos);
      if (toks.empty()) error(action_pos, "missing value for command");
      const Tok& first = toks[0];
      if (first.type == T::Ident) {
        const std::string& kw = first.text;
        if (kw == "if" || kw == "range" || kw == "with") {
          out.push_back(parse_control(kw, std::vector<Tok>(toks.begin() + 1, toks.end()), action_pos));
          continue;
        }
        if (kw == "else" || kw == "end") {
          term = kw;
          rest.assign(toks.begin() + 1, toks.end());
          term_pos = action_pos;
          return out;
        }
        if (kw == "break" || kw == "continue") {
          if (range_depth_ == 0) error(action_pos, "{{" + kw + "}} outside {{range}}");
          if (toks.size() != 1) error(toks[1].pos, "unexpected token after " + kw);
          Node n;
          n.kind = kw == "break" ? Node::Kind::Break : Node::Kind::Continue;
          n.pos = action_pos;
          out.push_back(std::move(n));
          continue;
        }
        if (kw == "define" || kw == "template" || kw == "block") {
          error(action_pos, "{{" + kw + "}} is not supported in chat templates");
        }
      }
      Node n;
      n.kind = Node::Kind::Action;
      n.pos = action_pos;
      size_t i = 0;
      n.pipe = parse_pipeline(toks, i, 1);
      if (i != toks.size()) error(toks[i].pos, "unexpected \"" + toks[i].text + "\" in command");
      out.push_back(std::move(n));
    }
  }

  Node parse_control(const std::string& kw, std::vector<Tok> toks, Pos pos) {
    if (++depth_ > kMaxDepth) error(pos, fmt::format("control structures nested deeper than {} levels", kMaxDepth));
    Node n;
    n.kind = kw == "if" ? Node::Kind::If : kw == "range" ? Node::Kind::Range : Node::Kind::With;
    n.pos = pos;
    if (toks.empty()) error(pos, "missing value for " + kw);
    scopes_.emplace_back();
    size_t i = 0;
    n.pipe = parse_pipeline(toks, i, kw == "range" ? 2 : 1);
    if (i != toks.size()) error(toks[i].pos, "unexpected \"" + toks[i].text + "\" in " + kw);
    std::string term;
    std::vector<Tok> rest;
    Pos term_pos;
    if (kw == "range") ++range_depth_;
    n.list = parse_list(term, rest, term_pos);
    if (kw == "range") --range_depth_;
    if (term == "else") {
      if (!rest.empty() && rest[0].type == T::Ident && rest[0].text == kw && kw != "range") {
        // {{else if ...}} / {{else with ...}}: a nested node that shares our {{end}}.
        n.else_list.push_back(parse_control(kw, std::vector<Tok>(rest.begin() + 1, rest.end()), term_pos));
        scopes_.pop_back();
        --depth_;
        return n;
      }
      if (!rest.empty()) error(rest[0].pos, "unexpected \"" + rest[0].text + "\" after else");
      n.else_list = parse_list(term, rest, term_pos);
    }
    if (term != "end") error(pos, "unexpected end of template: {{" + kw + "}} is not closed by {{end}}");
    if (!rest.empty()) error(rest[0].pos, "unexpected \"" + rest[0].text + "\" after end");
    scopes_.pop_back();
    --depth_;
    return n;
  }

  Pipe parse_pipeline(const std::vector<Tok>& t, size_t& i, int max_decl) {
    Pipe p;
    p.pos = t[i].pos;
    auto is = [&](size_t k, T type) { return k < t.size() && t[k].type == type; };
    if (max_decl >= 1 && is(i, T::Var) && (is(i + 1, T::Declare) || is(i + 1, T::Assign))) {
      p.decl = {t[i].text};
      p.assign = is(i + 1, T::Assign);
      i += 2;
    } else if (max_decl >= 2 && is(i, T::Var) && is(i + 1, T::Comma) && is(i + 2, T::Var) &&
               (is(i + 3, T::Declare) || is(i + 3, T::Assign))) {
      p.decl = {t[i].text, t[i + 2].text};
      p.assign = is(i + 3, T::Assign);
      i += 4;
    } else if (is(i, T::Var) && is(i + 1, T::Comma)) {
      error(t[i].pos, "too many declarations");
    }
    for (const std::string& v : p.decl) {
      if (p.assign && !declared(v)) error(p.pos, "undefined variable \"" + v + "\"");
      if (!p.assign) scopes_.back().push_back(v);
    }
    while (true) {
      p.cmds.push_back(parse_command(t, i));
      if (!is(i, T::Bar)) break;
      ++i;
    }
    return p;
  }

  Cmd parse_command(const std::vector<Tok>& t, size_t& i) {
    Cmd c;
    c.pos = i < t.size() ? t[i].pos : Pos{};
    while (i < t.size() && t[i].type != T::Bar && t[i].type != T::RParen) {
      if (!c.args.empty() && !t[i].space_before && t[i].type != T::LParen) {
        error(t[i].pos, "missing space before \"" + t[i].text + "\"");
      }
      c.args.push_back(parse_operand(t, i));
    }
    if (c.args.empty()) error(c.pos, "missing value for command");
    return c;
  }

  Arg parse_operand(const std::vector<Tok>& t, size_t& i) {
    const Tok& tok = t[i];
    Arg a;
    a.pos = tok.pos;
    bool chainable = true;
    switch (tok.type) {
      case T::Field: a.kind = Arg::Kind::Field, a.fields = {tok.text}, ++i; break;
      case T::Dot: a.kind = Arg::Kind::Dot, ++i; break;
      case T::Var:
        if (!declared(tok.text)) error(tok.pos, "undefined variable \"" + tok.text + "\"");
        a.kind = Arg::Kind::Var, a.name = tok.text, ++i;
        break;
      case T::Ident:
        chainable = false;
        ++i;
        if (tok.text == "true" || tok.text == "false") {
          a.kind = Arg::Kind::Literal, a.literal = tok.text == "true";
        } else if (tok.text == "nil") {
          a.kind = Arg::Kind::Nil;
        } else if (is_function(tok.text)) {
          a.kind = Arg::Kind::Func, a.name = tok.text;
        } else {
          error(tok.pos, "function \"" + tok.text + "\" not defined");
        }
        break;
      case T::String:
      case T::Number:
      case T::Char: a.kind = Arg::Kind::Literal, a.literal = tok.value, ++i, chainable = false; break;
      case T::LParen: {
        if (++depth_ > kMaxDepth) error(tok.pos, fmt::format("parentheses nested deeper than {} levels", kMaxDepth));
        ++i;
        if (i >= t.size()) error(tok.pos, "unclosed left paren");
        auto sub = std::make_shared<Pipe>(parse_pipeline(t, i, 0));
        if (i >= t.size() || t[i].type != T::RParen) error(tok.pos, "unclosed left paren");
        ++i;
        --depth_;
        a.kind = Arg::Kind::Pipe, a.pipe = std::move(sub);
        break;
      }
      default: error(tok.pos, "unexpected \"" + tok.text + "\" in operand");
    }
    while (i < t.size() && t[i].type == T::Field && !t[i].space_before) {
      if (!chainable) error(t[i].pos, "unexpected . after term");
      a.fields.push_back(t[i++].text);
    }
    return a;
  }

  void skip_comment(size_t p, Pos pos) {
    const size_t end = src_.find("*/", p + 2);
    if (end == std::string::npos) error(pos, "unclosed comment");
    size_t q = end + 2;
    if (src_.compare(q, 4, " -}}") == 0) {
      trim_next_ = true;
      pos_ = q + 4;
    } else if (src_.compare(q, 2, "}}") == 0) {
      pos_ = q + 2;
    } else {
      error(pos, "comment ends before closing delimiter");
    }
  }

  std::vector<Tok> lex_action(size_t p, Pos action_pos) {
    std::vector<Tok> toks;
    int parens = 0;
    while (true) {
      bool space = false;
      while (p < src_.size() && is_space(src_[p])) ++p, space = true;
      if (p >= src_.size()) error(action_pos, "unclosed action");
      if ((space && src_.compare(p, 3, "-}}") == 0) || src_.compare(p, 2, "}}") == 0) {
        if (parens > 0) error(action_pos, "unclosed left paren");
        trim_next_ = src_[p] == '-';
        pos_ = p + (trim_next_ ? 3 : 2);
        return toks;
      }
      Tok t;
      t.pos = pos_at(p);
      t.space_before = space || toks.empty();
      const char c = src_[p];
      const size_t start = p;
      if (c == '"' || c == '`' || c == '\'') {
        p = lex_quoted(p, t);
      } else if (c == '.' && p + 1 < src_.size() && is_alpha(src_[p + 1])) {
        ++p;
        while (p < src_.size() && is_alnum(src_[p])) ++p;
        t.type = T::Field;
        t.text = src_.substr(start + 1, p - start - 1);
      } else if (c == '$') {
        ++p;
        while (p < src_.size() && is_alnum(src_[p])) ++p;
        t.type = T::Var;
        t.text = src_.substr(start, p - start);
      } else if (is_digit(c) || ((c == '-' || c == '+' || c == '.') && p + 1 < src_.size() && is_digit(src_[p + 1]))) {
        p = lex_number(p, t);
      } else if (c == '.') {
        ++p;
        t.type = T::Dot;
        t.text = ".";
      } else if (is_alpha(c)) {
        while (p < src_.size() && is_alnum(src_[p])) ++p;
        t.type = T::Ident;
        t.text = src_.substr(start, p - start);
      } else if (c == ':' && p + 1 < src_.size() && src_[p + 1] == '=') {
        p += 2;
        t.type = T::Declare;
        t.text = ":=";
      } else {
        ++p;
        t.text = std::string(1, c);
        switch (c) {
          case '(': t.type = T::LParen, ++parens; break;
          case ')':
            if (--parens < 0) error(t.pos, "unexpected right paren");
            t.type = T::RParen;
            break;
          case '|': t.type = T::Bar; break;
          case ',': t.type = T::Comma; break;
          case '=': t.type = T::Assign; break;
          default: error(t.pos, fmt::format("unrecognized character in action: '{}'", c));
        }
      }
      toks.push_back(std::move(t));
    }
  }

  size_t lex_number(size_t p, Tok& t) {
    const size_t start = p;
    if (src_[p] == '+' || src_[p] == '-') ++p;
    while (p < src_.size() && (is_alnum(src_[p]) || src_[p] == '.' ||
                               ((src_[p] == '+' || src_[p] == '-') && (src_[p - 1] == 'e' || src_[p - 1] == 'E')))) {
      ++p;
    }
    std::string s = src_.substr(start, p - start);
    t.text = s;
    t.type = T::Number;
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    const bool hex = s.find("0x") != std::string::npos || s.find("0X") != std::string::npos;
    const bool is_float = !hex && s.find_first_of(".eE") != std::string::npos;
    char* end = nullptr;
    if (!is_float) {
      std::string digits = s;
      int base = 10;
      const size_t sign = (digits[0] == '-' || digits[0] == '+') ? 1 : 0;
      if (digits.size() > sign + 2 && digits[sign] == '0') {
        const char k = static_cast<char>(digits[sign + 1] | 0x20);
        if (k == 'x' || k == 'o' || k == 'b') {
          base = k == 'x' ? 16 : k == 'o' ? 8 : 2;
          digits.erase(sign, 2);
        }
      }
      errno = 0;
      const long long v = std::strtoll(digits.c_str(), &end, base);
      if (errno == 0 && end && *end == '\0') {
        t.value = static_cast<int64_t>(v);
        return p;
      }
    }
    const double d = std::strtod(s.c_str(), &end);
    if (!end || *end != '\0') error(t.pos, "bad number syntax: \"" + t.text + "\"");
    t.value = d;
    return p;
  }

  size_t lex_quoted(size_t p, Tok& t) {
    const char q = src_[p++];
    std::string out;
    if (q == '`') {  // raw string: no escapes, may span lines, carriage returns dropped
      const size_t end = src_.find('`', p);
      if (end == std::string::npos) error(t.pos, "unterminated raw quoted string");
      for (size_t i = p; i < end; ++i) {
        if (src_[i] != '\r') out += src_[i];
      }
      t.type = T::String;
      t.text = out;
      t.value = out;
      return end + 1;
    }
    while (true) {
      if (p >= src_.size() || src_[p] == '\n') error(t.pos, "unterminated quoted string");
      const char c = src_[p++];
      if (c == q) break;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (p >= src_.size()) error(t.pos, "unterminated quoted string");
      const char e = src_[p++];
      switch (e) {
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case '\\': out += '\\'; break;
        case '"':
        case '\'':
          if (e != q) error(t.pos, "invalid escape in quoted string");
          out += e;
          break;
        case 'x': case 'u': case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (p + n > src_.size()) error(t.pos, "invalid escape in quoted string");
          uint32_t v = 0;
          for (size_t k = 0; k < n; ++k) {
            const char h = src_[p + k];
            const int d = is_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
            if (d < 0) error(t.pos, "invalid escape in quoted string");
            v = v * 16 + static_cast<uint32_t>(d);
          }
          p += n;
          if (e == 'x') out += static_cast<char>(v);
          else py::append_utf8(out, v);
          break;
        }
        default:
          if (e >= '0' && e <= '7' && p + 1 < src_.size() && src_[p] >= '0' && src_[p] <= '7' && src_[p + 1] >= '0' &&
              src_[p + 1] <= '7') {
            const int v = (e - '0') * 64 + (src_[p] - '0') * 8 + (src_[p + 1] - '0');
            if (v > 255) error(t.pos, "invalid escape in quoted string");
            out += static_cast<char>(v);
            p += 2;
            break;
          }
          error(t.pos, "invalid escape in quoted string");
      }
    }
    if (q == '\'') {  // a character constant is a number: its code point
      size_t k = 0;
      if (out.empty()) error(t.pos, "empty character constant");
      const uint32_t cp = py::decode_utf8(out, k);
      if (k != out.size()) error(t.pos, "character constant holds more than one character");
      t.type = T::Char;
      t.value = static_cast<int64_t>(cp);
    } else {
      t.type = T::String;
      t.value = out;
    }
    t.text = out;
    return p;
  }
};

}  // namespace

std::shared_ptr<Tree> parse(std::string_view source) {
  auto tree = std::make_shared<Tree>();
  tree->source = std::string(source);
  tree->root = Parser(source).parse_root();
  return tree;
}

}  // namespace pl::chat::go
