// Syntax tree of a parsed Jinja template (see jinja_parser.cpp for the
// grammar, which follows Jinja's operator precedence).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "chat/jinja_lexer.h"
#include "chat/jinja_value.h"

namespace pl::chat::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class ExprKind : uint8_t {
  Literal,   // value
  Name,      // name
  List,      // items
  Tuple,     // items
  Dict,      // items: key, value, key, value, ...
  Attr,      // a.name
  Item,      // a[b]
  Slice,     // a[b:c:d] with items {a, start, stop, step}, absent parts null
  Call,      // a(items..., kwargs)
  Filter,    // a | name(items..., kwargs); a is null inside {% filter %}
  Test,      // a is [not] name(items..., kwargs)
  Neg,       // -a
  Pos,       // +a
  Not,       // not a
  Binary,    // a op b
  Compare,   // a op b op c ... (ops, items = operands after a)
  Cond,      // b if a else c
};

enum class BinOp : uint8_t { Add, Sub, Mul, Div, FloorDiv, Mod, Pow, Concat, And, Or };
enum class CmpOp : uint8_t { Eq, Ne, Lt, Le, Gt, Ge, In, NotIn };

struct Expr {
  ExprKind kind;
  Pos pos;
  Value value;       // Literal
  std::string name;  // Name, Attr, Filter, Test
  ExprPtr a, b, c;
  std::vector<ExprPtr> items;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  BinOp op = BinOp::Add;
  std::vector<CmpOp> cmp;
  bool negated = false;  // Test: "is not"
};

enum class StmtKind : uint8_t {
  Text,      // text
  Output,    // {{ expr }}
  If,        // conds[i] -> bodies[i]; else_body
  For,       // targets in expr [if cond] body else_body
  Set,       // targets (or ns.attr) = expr
  SetBlock,  // {% set name %}body{% endset %}, filters applied to the captured text
  Macro,     // name(params) body
  CallBlock, // {% call(params) expr %}body{% endcall %}
  FilterBlock,
  With,      // targets = values, body
  Break,
  Continue,
};

struct Param {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Stmt {
  StmtKind kind;
  Pos pos;
  std::string text;               // Text; Macro name; Set: the namespace attribute ("" for plain names)
  ExprPtr expr;                   // Output, For iterable, Set value, CallBlock call, FilterBlock filter chain
  ExprPtr cond;                   // For filter condition
  std::vector<ExprPtr> conds;     // If
  std::vector<Body> bodies;       // If
  std::vector<std::string> targets;
  std::vector<ExprPtr> values;    // With
  std::vector<Param> params;      // Macro, CallBlock (caller's params)
  std::vector<ExprPtr> filters;   // SetBlock
  Body body, else_body;
};

struct Program {
  std::string source;
  Body body;
};

std::unique_ptr<Program> parse_program(std::string_view source);

// Whether a filter / test of that name exists (parse-time check).
bool has_filter(const std::string& name);
bool has_test(const std::string& name);

}  // namespace pl::chat::jinja
