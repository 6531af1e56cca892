#include "chat/jinja_lexer.h"

#include <algorithm>
#include <cmath>
#include <fmt/core.h>

#include "chat/pystr.h"
#include "core/error.h"

namespace pl::chat::jinja {

void syntax_error(Pos pos, const std::string& msg) { pl::fail("line {}, column {}: {}", pos.line, pos.col, msg); }

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }
bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Python's unicode-escape decoding of a string literal's body.
std::string unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char n = s[++i];
    switch (n) {
      case '\n': break;
      case '\\': case '\'': case '"': out += n; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x': case 'u': case 'U': {
        const size_t n_digits = n == 'x' ? 2 : (n == 'u' ? 4 : 8);
        uint32_t cp = 0;
        size_t k = 0;
        for (; k < n_digits && i + 1 + k < s.size() && hex_value(s[i + 1 + k]) >= 0; ++k) {
          cp = cp * 16 + static_cast<uint32_t>(hex_value(s[i + 1 + k]));
        }
        if (k < n_digits) {  // Python rejects a short escape; keep the text as written
          out += '\\';
          out += n;
          break;
        }
        py::append_utf8(out, cp);
        i += n_digits;
        break;
      }
      default:
        if (n >= '0' && n <= '7') {
          uint32_t cp = static_cast<uint32_t>(n - '0');
          for (int k = 0; k < 2 && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7'; ++k) {
            cp = cp * 8 + static_cast<uint32_t>(s[++i] - '0');
          }
          py::append_utf8(out, cp);
        } else {
          out += '\\';
          out += n;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) {
    const std::vector<std::string> lines = py::splitlines(source, false);
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) src_ += '\n';
      line_starts_.push_back(src_.size());
      src_ += lines[i];
    }
    if (line_starts_.empty()) line_starts_.push_back(0);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    while (true) {
      const size_t tag = find_tag(pos);
      const size_t text_end = tag == std::string::npos ? src_.size() : tag;
      size_t text_begin = pos;
      if (strip_next_) {
        while (text_begin < text_end) {
          size_t j = text_begin;
          if (!py::is_space(py::decode_utf8(src_, j))) break;
          text_begin = j;
        }
      } else if (trim_newline_next_ && text_begin < text_end && src_[text_begin] == '\n') {
        ++text_begin;
      }
      strip_next_ = trim_newline_next_ = false;
      std::string text = src_.substr(text_begin, text_end - text_begin);
      if (tag != std::string::npos) {
        const char kind = src_[tag + 1];
        const char sign = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
        if (sign == '-') {
          text = py::strip(text, false, true, std::nullopt);
        } else if (kind != '{' && sign != '+') {
          const size_t nl = text.rfind('\n');
          const size_t line_begin = nl == std::string::npos ? 0 : nl + 1;
          const bool at_line_start = nl != std::string::npos || text_begin == 0 || src_[text_begin - 1] == '\n';
          if (at_line_start && std::all_of(text.begin() + static_cast<std::ptrdiff_t>(line_begin), text.end(),
                                           [](char c) { return c == ' ' || c == '\t'; })) {
            text.resize(line_begin);
          }
        }
      }
      if (!text.empty()) out_.push_back({Tok::Text, pos_at(text_begin), std::move(text)});
      if (tag == std::string::npos) break;
      pos = lex_tag(tag);
    }
    out_.push_back({Tok::Eof, pos_at(src_.size()), {}});
    return std::move(out_);
  }

 private:
  std::string src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> out_;
  bool strip_next_ = false;         // the previous tag ended with '-'
  bool trim_newline_next_ = false;  // the previous tag was a block or comment (trim_blocks)

  Pos pos_at(size_t offset) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const size_t line = static_cast<size_t>(it - line_starts_.begin());
    const size_t start = line_starts_[line - 1];
    uint32_t col = 1;
    for (size_t i = start; i < offset && i < src_.size(); ++i) {
      if ((static_cast<unsigned char>(src_[i]) & 0xC0) != 0x80) ++col;
    }
    return {static_cast<uint32_t>(line), col};
  }

  size_t find_tag(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  // Lexes the tag at `tag`; returns the offset just after it.
  size_t lex_tag(size_t tag) {
    const char kind = src_[tag + 1];
    size_t p = tag + 2;
    const char sign = p < src_.size() ? src_[p] : '\0';
    if (sign == '-' || (sign == '+' && kind != '{')) ++p;
    if (kind == '#') {
      const size_t end = src_.find("#}", p);
      if (end == std::string::npos) syntax_error(pos_at(tag), "missing end of comment tag");
      const char esign = end > p ? src_[end - 1] : '\0';
      strip_next_ = esign == '-';
      trim_newline_next_ = esign != '-' && esign != '+';
      return end + 2;
    }
    const size_t first = out_.size();
    out_.push_back({kind == '{' ? Tok::VarBegin : Tok::BlockBegin, pos_at(tag), {}});
    p = lex_expression(p, kind == '{', tag);
    if (kind == '%' && out_.size() == first + 3 && out_[first + 1].type == Tok::Name &&
        out_[first + 1].text == "raw") {
      return lex_raw(first, p);
    }
    return p;
  }

  // After {% raw %}: everything up to {% endraw %} is text.
  size_t lex_raw(size_t first, size_t p) {
    const Pos raw_pos = out_[first].pos;
    out_.resize(first);
    size_t body_begin = p;
    if (strip_next_) {
      while (body_begin < src_.size() && is_ws(src_[body_begin])) ++body_begin;
    } else if (trim_newline_next_ && body_begin < src_.size() && src_[body_begin] == '\n') {
      ++body_begin;
    }
    strip_next_ = trim_newline_next_ = false;
    for (size_t i = src_.find("{%", p); i != std::string::npos; i = src_.find("{%", i + 2)) {
      size_t j = i + 2;
      const char sign = j < src_.size() ? src_[j] : '\0';
      if (sign == '-' || sign == '+') ++j;
      while (j < src_.size() && is_ws(src_[j])) ++j;
      if (src_.compare(j, 6, "endraw") != 0) continue;
      j += 6;
      while (j < src_.size() && is_ws(src_[j])) ++j;
      char esign = '\0';
      if (j < src_.size() && (src_[j] == '-' || src_[j] == '+')) esign = src_[j++];
      if (src_.compare(j, 2, "%}") != 0) continue;
      std::string body = src_.substr(body_begin, i > body_begin ? i - body_begin : 0);
      if (sign == '-') body = py::strip(body, false, true, std::nullopt);
      if (!body.empty()) out_.push_back({Tok::Text, pos_at(body_begin), std::move(body)});
      strip_next_ = esign == '-';
      trim_newline_next_ = esign != '-' && esign != '+';
      return j + 2;
    }
    syntax_error(raw_pos, "missing {% endraw %}");
  }

  // Tokens of an expression up to the closing }} or %}; returns the offset after it.
  size_t lex_expression(size_t p, bool var, size_t tag) {
    int depth = 0;
    while (true) {
      while (p < src_.size() && is_ws(src_[p])) ++p;
      if (p >= src_.size()) {
        syntax_error(pos_at(tag), std::string("unexpected end of template, expected '") + (var ? "}}" : "%}") + "'");
      }
      const Pos here = pos_at(p);
      if (depth == 0) {
        const std::string_view rest(src_.data() + p, src_.size() - p);
        const std::string_view close = var ? "}}" : "%}";
        if (rest.substr(0, 1) == "-" && rest.substr(1, 2) == close) {
          out_.push_back({var ? Tok::VarEnd : Tok::BlockEnd, here, {}});
          strip_next_ = true;
          return p + 3;
        }
        if (!var && rest.substr(0, 1) == "+" && rest.substr(1, 2) == close) {
          out_.push_back({Tok::BlockEnd, here, {}});
          return p + 3;
        }
        if (rest.substr(0, 2) == close) {
          out_.push_back({var ? Tok::VarEnd : Tok::BlockEnd, here, {}});
          trim_newline_next_ = !var;
          return p + 2;
        }
      }
      const char c = src_[p];
      if (c == '\'' || c == '"') {
        size_t j = p + 1;
        while (j < src_.size() && src_[j] != c) j += src_[j] == '\\' ? 2 : 1;
        if (j >= src_.size()) syntax_error(here, "unterminated string literal");
        out_.push_back({Tok::String, here, unescape(std::string_view(src_).substr(p + 1, j - p - 1))});
        p = j + 1;
      } else if (is_digit(c)) {
        p = lex_number(p, here);
      } else if (is_name_start(c)) {
        size_t j = p;
        while (j < src_.size() && is_name_char(src_[j])) ++j;
        out_.push_back({Tok::Name, here, src_.substr(p, j - p)});
        p = j;
      } else {
        static constexpr std::string_view kOps[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%",
                                                    "~",  "<",  ">",  "=",  "(",  ")",  "[", "]", "{", "}", ",",
                                                    ".",  ":",  "|",  ";"};
        std::string_view op;
        for (std::string_view o : kOps) {
          if (src_.compare(p, o.size(), o) == 0) {
            op = o;
            break;
          }
        }
        if (op.empty()) syntax_error(here, fmt::format("unexpected character '{}'", c));
        if (op == "(" || op == "[" || op == "{") ++depth;
        if ((op == ")" || op == "]" || op == "}") && depth > 0) --depth;
        out_.push_back({Tok::Op, here, std::string(op)});
        p += op.size();
      }
    }
  }

  size_t lex_number(size_t p, Pos here) {
    auto digits = [&](size_t j, auto pred) {
      while (j < src_.size() && (pred(src_[j]) || (src_[j] == '_' && j + 1 < src_.size() && pred(src_[j + 1])))) ++j;
      return j;
    };
    auto clean = [&](size_t a, size_t b) {
      std::string s = src_.substr(a, b - a);
      s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
      return s;
    };
    const bool after_dot = p > 0 && src_[p - 1] == '.';
    // Prefixed integers: 0x.., 0o.., 0b..
    if (src_[p] == '0' && p + 2 < src_.size() && std::string_view("xXoObB").find(src_[p + 1]) != std::string_view::npos) {
      const char k = static_cast<char>(src_[p + 1] | 0x20);
      const int base = k == 'x' ? 16 : (k == 'o' ? 8 : 2);
      const size_t end = digits(p + 2, [&](char ch) { return hex_value(ch) >= 0 && hex_value(ch) < base; });
      if (end > p + 2) {
        push_int(clean(p + 2, end), base, here);
        return end;
      }
    }
    size_t j = digits(p, is_digit);
    bool is_float = false;
    if (!after_dot && j + 1 < src_.size() && src_[j] == '.' && is_digit(src_[j + 1])) {
      j = digits(j + 1, is_digit);
      is_float = true;
    }
    if (!after_dot && j < src_.size() && (src_[j] == 'e' || src_[j] == 'E')) {
      size_t k = j + 1;
      if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
      if (k < src_.size() && is_digit(src_[k])) {
        j = digits(k, is_digit);
        is_float = true;
      }
    }
    if (is_float) {
      Token t{Tok::Float, here, {}};
      t.f = std::strtod(clean(p, j).c_str(), nullptr);
      out_.push_back(std::move(t));
    } else {
      push_int(clean(p, j), 10, here);
    }
    return j;
  }

  void push_int(const std::string& digits, int base, Pos here) {
    int64_t v = 0;
    for (char c : digits) {
      const int d = hex_value(c);
      if (v > (INT64_MAX - d) / base) syntax_error(here, "integer literal too large");
      v = v * base + d;
    }
    Token t{Tok::Int, here, {}};
    t.i = v;
    out_.push_back(std::move(t));
  }
};

}  // namespace

std::vector<Token> lex(std::string_view source) { return Lexer(source).run(); }

}  // namespace pl::chat::jinja
