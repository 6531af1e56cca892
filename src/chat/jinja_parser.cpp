// Recursive-descent parser over the lexer's tokens. Expression precedence,
// lowest first, as in Jinja: conditional (a if c else b), or, and, not,
// comparisons (== != < <= > >= in, not in; chained), + -, ~, * / // %, **,
// unary - +, then postfix (.attr [index] [a:b:c] (call)) with filters
// (| name) and tests (is [not] name) binding tighter than any binary operator.
#include <initializer_list>

#include <fmt/core.h>

#include "chat/jinja_ast.h"
#include "core/error.h"

namespace pl::chat::jinja {

namespace {

// Nesting limits: the parser and the evaluator recurse along the tree.
constexpr int kMaxExprDepth = 64;
constexpr int kMaxBlockDepth = 64;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Body parse_template() {
    std::string end;
    Body body = parse_body({}, end);
    return body;
  }

  // The innermost open block, for "not closed" errors.
  std::string open_tag_;
  Pos open_pos_;

 private:
  std::vector<Token> t_;
  size_t i_ = 0;
  int expr_depth_ = 0;
  int block_depth_ = 0;
  int loop_depth_ = 0;

  struct Guard {
    int& d;
    Guard(int& depth, int max, Pos pos, const char* what) : d(depth) {
      if (++d > max) syntax_error(pos, fmt::format("{} nested deeper than {} levels", what, max));
    }
    ~Guard() { --d; }
  };

  const Token& cur() const { return t_[i_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  const Token& advance() {
    const Token& t = t_[i_];
    if (i_ + 1 < t_.size()) ++i_;
    return t;
  }
  bool is_op(std::string_view op) const { return cur().type == Tok::Op && cur().text == op; }
  bool is_name(std::string_view n) const { return cur().type == Tok::Name && cur().text == n; }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(std::string_view n) {
    if (!is_name(n)) return false;
    advance();
    return true;
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::Text: return "text";
      case Tok::VarBegin: return "'{{'";
      case Tok::VarEnd: return "'}}'";
      case Tok::BlockBegin: return "'{%'";
      case Tok::BlockEnd: return "'%}'";
      case Tok::Name: return "'" + t.text + "'";
      case Tok::String: return "string literal";
      case Tok::Int: case Tok::Float: return "number";
      case Tok::Op: return "'" + t.text + "'";
      case Tok::Eof: return "end of template";
    }
    return "token";
  }

  [[noreturn]] void unexpected(const std::string& expected) const {
    syntax_error(cur().pos, "expected " + expected + ", got " + describe(cur()));
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) unexpected("'" + std::string(op) + "'");
  }
  void expect(Tok type, const char* what) {
    if (cur().type != type) unexpected(what);
    advance();
  }
  std::string expect_ident() {
    if (cur().type != Tok::Name) unexpected("a name");
    return advance().text;
  }

  static ExprPtr node(ExprKind k, Pos pos) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->pos = pos;
    return e;
  }

  // ---- statements ----

  // Statements up to a {% tag %} whose name is in `ends` (consumed, name stored in `end`).
  Body parse_body(std::initializer_list<std::string_view> ends, std::string& end) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == Tok::Eof) {
        if (ends.size() == 0) return body;
        const std::vector<std::string_view> v(ends);
        std::string expected;
        for (size_t k = 0; k < v.size(); ++k) {
          if (k) expected += k + 1 == v.size() ? " or " : ", ";
          expected += "'" + std::string(v[k]) + "'";
        }
        syntax_error(t.pos, fmt::format("unexpected end of template: the '{}' block opened at line {}, column {} is "
                                        "not closed (expected {})",
                                        open_tag_, open_pos_.line, open_pos_.col, expected));
      }
      if (t.type == Tok::Text) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::Text;
        s->pos = t.pos;
        s->text = t.text;
        body.push_back(std::move(s));
        advance();
      } else if (t.type == Tok::VarBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::Output;
        s->pos = t.pos;
        advance();
        s->expr = parse_tuple(true);
        expect(Tok::VarEnd, "'}}'");
        body.push_back(std::move(s));
      } else if (t.type == Tok::BlockBegin) {
        const Token& name = peek();
        if (name.type == Tok::Name) {
          for (std::string_view e : ends) {
            if (name.text == e) {
              advance();
              end = advance().text;
              return body;
            }
          }
        }
        body.push_back(parse_statement());
      } else {
        unexpected("text or a tag");
      }
    }
  }

  StmtPtr parse_statement() {
    const Pos pos = advance().pos;  // {%
    if (cur().type != Tok::Name) unexpected("a statement name");
    const std::string tag = advance().text;
    Guard guard(block_depth_, kMaxBlockDepth, pos, "blocks");
    const std::string saved_tag = open_tag_;
    const Pos saved_pos = open_pos_;
    open_tag_ = tag;
    open_pos_ = pos;
    struct Restore {
      Parser& p;
      std::string tag;
      Pos pos;
      ~Restore() { p.open_tag_ = tag, p.open_pos_ = pos; }
    } restore{*this, saved_tag, saved_pos};
    auto s = std::make_unique<Stmt>();
    s->pos = pos;
    if (tag == "if") return parse_if(std::move(s));
    if (tag == "for") return parse_for(std::move(s));
    if (tag == "set") return parse_set(std::move(s));
    if (tag == "macro") return parse_macro(std::move(s));
    if (tag == "call") return parse_call_block(std::move(s));
    if (tag == "filter") return parse_filter_block(std::move(s));
    if (tag == "with") return parse_with(std::move(s));
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) syntax_error(pos, "'" + tag + "' outside of a loop");
      s->kind = tag == "break" ? StmtKind::Break : StmtKind::Continue;
      expect(Tok::BlockEnd, "'%}'");
      return s;
    }
    static constexpr std::string_view kEnds[] = {"elif", "else", "endif", "endfor", "endset", "endmacro",
                                                 "endcall", "endfilter", "endwith", "endraw"};
    for (std::string_view e : kEnds) {
      if (tag == e) syntax_error(pos, "unexpected '" + tag + "'");
    }
    static constexpr std::string_view kUnsupported[] = {"include", "import", "from", "extends", "block", "do",
                                                        "autoescape", "trans"};
    for (std::string_view u : kUnsupported) {
      if (tag == u) syntax_error(pos, "the '" + tag + "' tag is not supported in chat templates");
    }
    syntax_error(pos, "unknown tag '" + tag + "'");
  }

  StmtPtr parse_if(StmtPtr s) {
    s->kind = StmtKind::If;
    std::string end = "elif";
    while (end == "elif") {
      s->conds.push_back(parse_tuple(true));
      expect(Tok::BlockEnd, "'%}'");
      s->bodies.push_back(parse_body({"elif", "else", "endif"}, end));
    }
    if (end == "else") {
      expect(Tok::BlockEnd, "'%}'");
      s->else_body = parse_body({"endif"}, end);
    }
    expect(Tok::BlockEnd, "'%}'");
    return s;
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    const bool paren = skip_op("(");
    do {
      names.push_back(expect_ident());
    } while (skip_op(","));
    if (paren) expect_op(")");
    return names;
  }

  StmtPtr parse_for(StmtPtr s) {
    s->kind = StmtKind::For;
    s->targets = parse_targets();
    if (!skip_name("in")) unexpected("'in'");
    s->expr = parse_tuple(false);
    if (skip_name("if")) s->cond = parse_expression(true);
    if (skip_name("recursive")) syntax_error(s->pos, "recursive loops are not supported");
    expect(Tok::BlockEnd, "'%}'");
    std::string end;
    ++loop_depth_;
    s->body = parse_body({"endfor", "else"}, end);
    --loop_depth_;
    if (end == "else") {
      expect(Tok::BlockEnd, "'%}'");
      s->else_body = parse_body({"endfor"}, end);
    }
    expect(Tok::BlockEnd, "'%}'");
    return s;
  }

  StmtPtr parse_set(StmtPtr s) {
    const std::string first = expect_ident();
    if (skip_op(".")) {
      s->kind = StmtKind::Set;
      s->targets = {first};
      s->text = expect_ident();
      expect_op("=");
      s->expr = parse_tuple(true);
      expect(Tok::BlockEnd, "'%}'");
      return s;
    }
    s->targets = {first};
    while (skip_op(",")) s->targets.push_back(expect_ident());
    if (skip_op("=")) {
      s->kind = StmtKind::Set;
      s->expr = parse_tuple(true);
      expect(Tok::BlockEnd, "'%}'");
      return s;
    }
    if (s->targets.size() != 1) unexpected("'='");
    s->kind = StmtKind::SetBlock;
    while (skip_op("|")) s->filters.push_back(parse_filter(nullptr));
    expect(Tok::BlockEnd, "'%}'");
    std::string end;
    s->body = parse_body({"endset"}, end);
    expect(Tok::BlockEnd, "'%}'");
    return s;
  }

  std::vector<Param> parse_params() {
    std::vector<Param> params;
    expect_op("(");
    while (!is_op(")")) {
      if (!params.empty()) expect_op(",");
      if (is_op(")")) break;
      Param p;
      p.name = expect_ident();
      if (skip_op("=")) p.default_value = parse_expression(true);
      params.push_back(std::move(p));
    }
    expect_op(")");
    return params;
  }

  StmtPtr parse_macro(StmtPtr s) {
    s->kind = StmtKind::Macro;
    s->text = expect_ident();
    s->params = parse_params();
    expect(Tok::BlockEnd, "'%}'");
    std::string end;
    const int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_body({"endmacro"}, end);
    loop_depth_ = saved;
    expect(Tok::BlockEnd, "'%}'");
    return s;
  }

  StmtPtr parse_call_block(StmtPtr s) {
    s->kind = StmtKind::CallBlock;
    if (is_op("(")) s->params = parse_params();
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::Call) syntax_error(s->expr->pos, "expected a call after 'call'");
    expect(Tok::BlockEnd, "'%}'");
    std::string end;
    const int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_body({"endcall"}, end);
    loop_depth_ = saved;
    expect(Tok::BlockEnd, "'%}'");
    return s;
  }

  StmtPtr parse_filter_block(StmtPtr s) {
    s->kind = StmtKind::FilterBlock;
    s->expr = parse_filter(nullptr);
    while (skip_op("|")) s->expr = parse_filter(std::move(s->expr));
    expect(Tok::BlockEnd, "'%}'");
    std::string end;
    s->body = parse_body({"endfilter"}, end);
    expect(Tok::BlockEnd, "'%}'");
    return s;
  }

  StmtPtr parse_with(StmtPtr s) {
    s->kind = StmtKind::With;
    while (cur().type != Tok::BlockEnd) {
      if (!s->targets.empty()) expect_op(",");
      s->targets.push_back(expect_ident());
      expect_op("=");
      s->values.push_back(parse_expression(true));
    }
    expect(Tok::BlockEnd, "'%}'");
    std::string end;
    s->body = parse_body({"endwith"}, end);
    expect(Tok::BlockEnd, "'%}'");
    return s;
  }

  // ---- expressions ----

  // Comma-separated expressions become a tuple (as in `{{ a, b }}` or `set a, b = 1, 2`).
  ExprPtr parse_tuple(bool with_condexpr) {
    const Pos pos = cur().pos;
    ExprPtr first = parse_expression(with_condexpr);
    if (!is_op(",")) return first;
    auto t = node(ExprKind::Tuple, pos);
    t->items.push_back(std::move(first));
    while (skip_op(",")) {
      if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || is_op(")")) break;
      t->items.push_back(parse_expression(with_condexpr));
    }
    return t;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    Guard guard(expr_depth_, kMaxExprDepth, cur().pos, "expressions");
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    ExprPtr e = parse_or();
    while (is_name("if")) {
      const Pos pos = advance().pos;
      auto c = node(ExprKind::Cond, pos);
      c->a = parse_or();
      c->b = std::move(e);
      if (skip_name("else")) c->c = parse_condexpr();
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary(BinOp op, ExprPtr l, ExprPtr r, Pos pos) {
    auto e = node(ExprKind::Binary, pos);
    e->op = op;
    e->a = std::move(l);
    e->b = std::move(r);
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      const Pos pos = advance().pos;
      e = binary(BinOp::Or, std::move(e), parse_and(), pos);
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      const Pos pos = advance().pos;
      e = binary(BinOp::And, std::move(e), parse_not(), pos);
    }
    return e;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      Guard guard(expr_depth_, kMaxExprDepth, cur().pos, "expressions");
      auto e = node(ExprKind::Not, advance().pos);
      e->a = parse_not();
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const Pos pos = cur().pos;
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
      CmpOp op;
      if (is_op("==")) op = CmpOp::Eq;
      else if (is_op("!=")) op = CmpOp::Ne;
      else if (is_op("<")) op = CmpOp::Lt;
      else if (is_op("<=")) op = CmpOp::Le;
      else if (is_op(">")) op = CmpOp::Gt;
      else if (is_op(">=")) op = CmpOp::Ge;
      else if (is_name("in")) op = CmpOp::In;
      else if (is_name("not") && peek().type == Tok::Name && peek().text == "in") {
        advance();
        op = CmpOp::NotIn;
      } else {
        break;
      }
      advance();
      if (!cmp) {
        cmp = node(ExprKind::Compare, pos);
        cmp->a = std::move(first);
      }
      cmp->cmp.push_back(op);
      cmp->items.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& t = advance();
      const BinOp op = t.text == "+" ? BinOp::Add : BinOp::Sub;
      e = binary(op, std::move(e), parse_concat(), t.pos);
    }
    return e;
  }

  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      const Pos pos = advance().pos;
      e = binary(BinOp::Concat, std::move(e), parse_math2(), pos);
    }
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& t = advance();
      const BinOp op = t.text == "*" ? BinOp::Mul : t.text == "/" ? BinOp::Div : t.text == "//" ? BinOp::FloorDiv : BinOp::Mod;
      e = binary(op, std::move(e), parse_pow(), t.pos);
    }
    return e;
  }

  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
      const Pos pos = advance().pos;
      e = binary(BinOp::Pow, std::move(e), parse_unary(true), pos);
    }
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
    Guard guard(expr_depth_, kMaxExprDepth, cur().pos, "expressions");
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      const Token& t = advance();
      e = node(t.text == "-" ? ExprKind::Neg : ExprKind::Pos, t.pos);
      e->a = parse_unary(false);
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    const Pos pos = t.pos;
    switch (t.type) {
      case Tok::Name: {
        advance();
        auto e = node(ExprKind::Literal, pos);
        if (t.text == "true" || t.text == "True") e->value = Value::boolean(true);
        else if (t.text == "false" || t.text == "False") e->value = Value::boolean(false);
        else if (t.text == "none" || t.text == "None") e->value = Value::none();
        else {
          e->kind = ExprKind::Name;
          e->name = t.text;
        }
        return e;
      }
      case Tok::String: {
        std::string s;
        while (cur().type == Tok::String) s += advance().text;  // adjacent literals concatenate
        auto e = node(ExprKind::Literal, pos);
        e->value = Value::string(std::move(s));
        return e;
      }
      case Tok::Int: {
        auto e = node(ExprKind::Literal, pos);
        e->value = Value::integer(advance().i);
        return e;
      }
      case Tok::Float: {
        auto e = node(ExprKind::Literal, pos);
        e->value = Value::number(advance().f);
        return e;
      }
      case Tok::Op:
        if (t.text == "(") {
          advance();
          if (skip_op(")")) return node(ExprKind::Tuple, pos);
          ExprPtr first = parse_expression(true);
          if (skip_op(")")) return first;
          auto tup = node(ExprKind::Tuple, pos);
          tup->items.push_back(std::move(first));
          while (skip_op(",")) {
            if (is_op(")")) break;
            tup->items.push_back(parse_expression(true));
          }
          expect_op(")");
          return tup;
        }
        if (t.text == "[") {
          advance();
          auto list = node(ExprKind::List, pos);
          while (!is_op("]")) {
            if (!list->items.empty()) expect_op(",");
            if (is_op("]")) break;
            list->items.push_back(parse_expression(true));
          }
          expect_op("]");
          return list;
        }
        if (t.text == "{") {
          advance();
          auto dict = node(ExprKind::Dict, pos);
          while (!is_op("}")) {
            if (!dict->items.empty()) expect_op(",");
            if (is_op("}")) break;
            dict->items.push_back(parse_expression(true));
            expect_op(":");
            dict->items.push_back(parse_expression(true));
          }
          expect_op("}");
          return dict;
        }
        break;
      default: break;
    }
    unexpected("an expression");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        const Pos pos = advance().pos;
        if (cur().type == Tok::Name) {
          auto a = node(ExprKind::Attr, pos);
          a->a = std::move(e);
          a->name = advance().text;
          e = std::move(a);
        } else if (cur().type == Tok::Int) {
          auto it = node(ExprKind::Item, pos);
          it->a = std::move(e);
          it->b = node(ExprKind::Literal, cur().pos);
          it->b->value = Value::integer(advance().i);
          e = std::move(it);
        } else {
          unexpected("an attribute name");
        }
      } else if (is_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr e) {
    const Pos pos = advance().pos;  // [
    ExprPtr parts[3];
    int n_colons = 0;
    bool is_slice = false;
    while (!is_op("]")) {
      if (is_op(":")) {
        advance();
        if (++n_colons > 2) unexpected("']'");
        is_slice = true;
        continue;
      }
      if (parts[n_colons]) unexpected("':' or ']'");
      parts[n_colons] = parse_expression(true);
      if (!is_slice && is_op(",")) {  // a[x, y]: a tuple index
        auto tup = node(ExprKind::Tuple, parts[0]->pos);
        tup->items.push_back(std::move(parts[0]));
        while (skip_op(",") && !is_op("]")) tup->items.push_back(parse_expression(true));
        parts[0] = std::move(tup);
      }
    }
    advance();  // ]
    if (!is_slice) {
      if (!parts[0]) syntax_error(pos, "expected an index");
      auto it = node(ExprKind::Item, pos);
      it->a = std::move(e);
      it->b = std::move(parts[0]);
      return it;
    }
    auto sl = node(ExprKind::Slice, pos);
    sl->items.push_back(std::move(e));
    for (auto& p : parts) sl->items.push_back(std::move(p));
    return sl;
  }

  void parse_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (!e.items.empty() || !e.kwargs.empty()) expect_op(",");
      if (is_op(")")) break;
      if (is_op("*") || is_op("**")) syntax_error(cur().pos, "*args and **kwargs in calls are not supported");
      if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == "=") {
        std::string name = advance().text;
        advance();
        e.kwargs.emplace_back(std::move(name), parse_expression(true));
      } else {
        if (!e.kwargs.empty()) syntax_error(cur().pos, "positional argument after a keyword argument");
        e.items.push_back(parse_expression(true));
      }
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr e) {
    auto c = node(ExprKind::Call, e->pos);  // errors point at the callee, not at '('
    c->a = std::move(e);
    parse_args(*c);
    return c;
  }

  ExprPtr parse_filter(ExprPtr input) {
    auto f = node(ExprKind::Filter, cur().pos);
    f->name = expect_ident();
    while (is_op(".") && peek().type == Tok::Name) {
      advance();
      f->name += "." + advance().text;
    }
    if (!has_filter(f->name)) syntax_error(f->pos, "no filter named '" + f->name + "'");
    f->a = std::move(input);
    if (is_op("(")) parse_args(*f);
    return f;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (skip_op("|")) {
        e = parse_filter(std::move(e));
      } else if (is_name("is")) {
        advance();
        auto t = node(ExprKind::Test, cur().pos);
        t->negated = skip_name("not");
        t->name = expect_ident();
        if (!has_test(t->name)) syntax_error(t->pos, "no test named '" + t->name + "'");
        t->a = std::move(e);
        if (is_op("(")) {
          parse_args(*t);
        } else if ((cur().type == Tok::Name || cur().type == Tok::String || cur().type == Tok::Int ||
                    cur().type == Tok::Float || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          if (is_name("is")) syntax_error(cur().pos, "tests cannot be chained with 'is'");
          t->items.push_back(parse_postfix(parse_primary()));
        }
        e = std::move(t);
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }
};

}  // namespace

std::unique_ptr<Program> parse_program(std::string_view source) {
  auto p = std::make_unique<Program>();
  p->source = std::string(source);
  p->body = Parser(lex(source)).parse_template();
  return p;
}

}  // namespace pl::chat::jinja
