// The tree-walking evaluator shared by jinja_eval.cpp (statements and
// operators), jinja_filters.cpp (filters and tests) and jinja_methods.cpp
// (attributes, str/dict methods, global functions).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat/jinja.h"
#include "chat/jinja_ast.h"
#include "chat/jinja_value.h"

namespace pl::chat::jinja {

// Variables of one frame. Frames chain to their parent: a for-loop iteration,
// a macro call and a {% with %} get their own, {% if %} does not (as in Jinja,
// where set inside a loop does not leak out of it; namespace() is the way out).
struct Scope {
  Scope* parent = nullptr;
  std::vector<std::pair<std::string, Value>> vars;

  const Value* lookup(std::string_view name) const;
  void set(const std::string& name, Value v);
};

class Interp {
 public:
  Interp(const RenderOptions& options, Scope& root);
  ~Interp();
  Interp(const Interp&) = delete;
  Interp& operator=(const Interp&) = delete;

  enum class Flow { Normal, Break, Continue };
  Flow exec(const Body& body, Scope& scope);
  Value eval(const Expr& e, Scope& scope);
  // Renders a body into a string instead of the output (macros, {% set %} blocks).
  std::string capture(const Body& body, Scope& scope);
  void emit(std::string_view s);
  void emit_value(const Value& v);

  Value call(const Value& fn, CallArgs& args);
  // Python iteration: list items, dict keys, str code points; Undefined is empty.
  std::vector<Value> iterate(const Value& v);

  Budget budget;
  Pos pos;  // the node being evaluated, for error messages
  const RenderOptions& options;
  Scope& root;
  std::string out;
  std::string* sink = &out;  // where emit() writes
  uint32_t call_depth = 0;
  // Every namespace made during the render: a namespace can end up holding
  // itself (ns.me = ns, or through a list or a loop), a reference cycle that
  // the destructor breaks by emptying them all.
  std::vector<Value> namespaces;

 private:
  Value eval_binary(const Expr& e, Scope& scope);
  Value eval_compare(const Expr& e, Scope& scope);
  Value eval_slice(const Expr& e, Scope& scope);
  CallArgs eval_args(const Expr& e, Scope& scope);
  Flow exec_for(const Stmt& s, Scope& scope);
  void exec_set(const Stmt& s, Scope& scope);
  void exec_call_block(const Stmt& s, Scope& scope);
};

// Reads a callable's arguments by position or keyword, Python style.
class ArgReader {
 public:
  ArgReader(CallArgs& args, std::string what) : args_(args), what_(std::move(what)) {}
  // The argument at position `index` or named `name`, or nullptr.
  const Value* find(size_t index, std::string_view name);
  Value get(size_t index, std::string_view name, Value fallback);
  // Positional arguments from `index` on (for *args-style parameters).
  std::vector<Value> rest(size_t index);
  // Throws for arguments nobody asked for.
  void done();

 private:
  CallArgs& args_;
  std::string what_;
  std::vector<bool> used_pos_, used_kw_;
};

// Python's `item in container` (jinja_eval.cpp).
bool contains(Interp& in, const Value& container, const Value& item);

// jinja_filters.cpp
Value call_filter(Interp& in, const std::string& name, const Value& input, CallArgs& args);
bool call_test(Interp& in, const std::string& name, const Value& v, CallArgs& args);

// jinja_methods.cpp
Value get_attr(Interp& in, const Value& obj, const std::string& name);
Value get_item(Interp& in, const Value& obj, const Value& key);
// Globals every template sees: range, namespace, dict, raise_exception, strftime_now.
const Value* find_global(std::string_view name);
// Python's str % args.
std::string percent_format(Interp& in, const std::string& fmt, const Value& args);
// Python slicing over n elements: the selected indices.
std::vector<size_t> slice_indices(size_t n, const Value& start, const Value& stop, const Value& step);

}  // namespace pl::chat::jinja
