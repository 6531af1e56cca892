// Statements and operators of the Jinja evaluator.
#include <cmath>
#include <memory>

#include "chat/jinja_interp.h"
#include "chat/pystr.h"

namespace pl::chat::jinja {

const Value* Scope::lookup(std::string_view name) const {
  for (const Scope* s = this; s; s = s->parent) {
    for (const auto& [k, v] : s->vars) {
      if (k == name) return &v;
    }
  }
  return nullptr;
}

void Scope::set(const std::string& name, Value v) {
  for (auto& [k, x] : vars) {
    if (k == name) {
      x = std::move(v);
      return;
    }
  }
  vars.emplace_back(name, std::move(v));
}

Interp::Interp(const RenderOptions& opts, Scope& root_scope)
    : budget(opts.limits.max_steps, opts.limits.max_output_bytes, opts.limits.max_memory_bytes),
      options(opts),
      root(root_scope) {}

Interp::~Interp() {
  for (Value& ns : namespaces) ns.ns_data().clear();
}

void Interp::emit(std::string_view s) {
  budget.write(sink->size() + s.size(), s.size());
  sink->append(s);
}

void Interp::emit_value(const Value& v) {
  if (v.is_string()) return emit(v.str());
  std::string tmp;
  append_str(tmp, v, budget);
  emit(tmp);
}

std::string Interp::capture(const Body& body, Scope& scope) {
  std::string buf;
  std::string* saved = sink;
  sink = &buf;
  struct Restore {
    std::string*& sink;
    std::string* saved;
    ~Restore() { sink = saved; }
  } restore{sink, saved};
  exec(body, scope);
  return buf;
}

Value Interp::call(const Value& fn, CallArgs& args) {
  if (fn.kind() == Kind::Callable) return fn.fn().call(*this, args);
  if (fn.is_undefined()) fault("'" + (fn.undefined_name().empty() ? "value" : fn.undefined_name()) + "' is undefined");
  fault("'" + type_name(fn) + "' object is not callable");
}

std::vector<Value> Interp::iterate(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return {};
    case Kind::List: budget.step(v.items().size()); return v.items();  // a transient copy of an existing list
    case Kind::Dict: {
      std::vector<Value> keys;
      budget.elements(v.dict().size());
      for (const auto& e : v.dict().entries) keys.push_back(Value::string(e.first));
      return keys;
    }
    case Kind::String: {
      std::vector<Value> chars;
      const std::string& s = v.str();
      budget.elements(s.size());
      for (size_t i = 0; i < s.size();) {
        const size_t b = i;
        py::decode_utf8(s, i);
        chars.push_back(Value::string(s.substr(b, i - b)));
      }
      return chars;
    }
    default: fault("'" + type_name(v) + "' object is not iterable");
  }
}

CallArgs Interp::eval_args(const Expr& e, Scope& scope) {
  CallArgs args;
  for (const auto& x : e.items) args.pos.push_back(eval(*x, scope));
  for (const auto& [k, x] : e.kwargs) args.kw.emplace_back(k, eval(*x, scope));
  return args;
}

namespace {

[[noreturn]] void undefined_operand(const Value& v) {
  fault("'" + (v.undefined_name().empty() ? "value" : v.undefined_name()) + "' is undefined");
}

[[noreturn]] void bad_operands(const char* op, const Value& a, const Value& b) {
  fault(std::string("unsupported operand type(s) for ") + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
}

bool any_float(const Value& a, const Value& b) { return a.kind() == Kind::Float || b.kind() == Kind::Float; }

Value repeat(Interp& in, const Value& seq, int64_t n) {
  if (n <= 0) return seq.is_string() ? Value::string("") : Value::list({}, seq.is_tuple());
  if (seq.is_string()) {
    const size_t total = seq.str().size() * static_cast<size_t>(n);
    if (seq.str().size() != 0 && total / seq.str().size() != static_cast<size_t>(n)) fault("string too large");
    in.budget.write(total, total);
    std::string out;
    out.reserve(total);
    for (int64_t i = 0; i < n; ++i) out += seq.str();
    return Value::string(std::move(out));
  }
  const auto& items = seq.items();
  const uint64_t total = static_cast<uint64_t>(items.size()) * static_cast<uint64_t>(n);
  in.budget.elements(total);
  std::vector<Value> out;
  out.reserve(total);
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
  return Value::list(std::move(out), seq.is_tuple());
}

// Python's floored modulo and division.
int64_t py_mod(int64_t a, int64_t b) {
  const int64_t r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
int64_t py_floordiv(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

}  // namespace

bool contains(Interp& in, const Value& container, const Value& item) {
  switch (container.kind()) {
    case Kind::String:
      if (!item.is_string()) fault("'in <string>' requires string as left operand, not " + type_name(item));
      in.budget.step(1 + container.str().size() / 64);
      return container.str().find(item.str()) != std::string::npos;
    case Kind::List:
      for (const Value& x : container.items()) {
        if (equal(x, item, in.budget)) return true;
      }
      return false;
    case Kind::Dict: return item.is_string() && container.dict().find(item.str()) != nullptr;
    case Kind::Undefined: return false;
    default: fault("argument of type '" + type_name(container) + "' is not iterable");
  }
}

Value Interp::eval_binary(const Expr& e, Scope& scope) {
  if (e.op == BinOp::And || e.op == BinOp::Or) {
    Value l = eval(*e.a, scope);
    if (l.truthy() == (e.op == BinOp::Or)) return l;
    return eval(*e.b, scope);
  }
  const Value l = eval(*e.a, scope);
  const Value r = eval(*e.b, scope);
  pos = e.pos;
  if (e.op == BinOp::Concat) {
    std::string s = to_str(l, budget);
    append_str(s, r, budget);
    budget.write(s.size(), s.size());
    return Value::string(std::move(s));
  }
  if (l.is_undefined()) undefined_operand(l);
  if (r.is_undefined()) undefined_operand(r);
  const bool nums = l.is_number() && r.is_number();
  const bool ints = nums && !any_float(l, r);
  switch (e.op) {
    case BinOp::Add: {
      if (ints) {
        int64_t v;
        if (__builtin_add_overflow(l.as_int(), r.as_int(), &v)) fault("integer overflow");
        return Value::integer(v);
      }
      if (nums) return Value::number(l.as_double() + r.as_double());
      if (l.is_string() && r.is_string()) {
        budget.write(l.str().size() + r.str().size(), l.str().size() + r.str().size());
        return Value::string(l.str() + r.str());
      }
      if (l.is_list() && r.is_list()) {
        budget.elements(l.items().size() + r.items().size());
        std::vector<Value> items = l.items();
        items.insert(items.end(), r.items().begin(), r.items().end());
        return Value::list(std::move(items), l.is_tuple());
      }
      bad_operands("+", l, r);
    }
    case BinOp::Sub: {
      if (ints) {
        int64_t v;
        if (__builtin_sub_overflow(l.as_int(), r.as_int(), &v)) fault("integer overflow");
        return Value::integer(v);
      }
      if (nums) return Value::number(l.as_double() - r.as_double());
      bad_operands("-", l, r);
    }
    case BinOp::Mul: {
      if (ints) {
        int64_t v;
        if (__builtin_mul_overflow(l.as_int(), r.as_int(), &v)) fault("integer overflow");
        return Value::integer(v);
      }
      if (nums) return Value::number(l.as_double() * r.as_double());
      if ((l.is_string() || l.is_list()) && (r.kind() == Kind::Int || r.kind() == Kind::Bool)) return repeat(*this, l, r.as_int());
      if ((r.is_string() || r.is_list()) && (l.kind() == Kind::Int || l.kind() == Kind::Bool)) return repeat(*this, r, l.as_int());
      bad_operands("*", l, r);
    }
    case BinOp::Div:
      if (!nums) bad_operands("/", l, r);
      if (r.as_double() == 0) fault("division by zero");
      return Value::number(l.as_double() / r.as_double());
    case BinOp::FloorDiv:
      if (!nums) bad_operands("//", l, r);
      if (r.as_double() == 0) fault("integer division or modulo by zero");
      if (ints) {
        if (l.as_int() == INT64_MIN && r.as_int() == -1) fault("integer overflow");
        return Value::integer(py_floordiv(l.as_int(), r.as_int()));
      }
      return Value::number(std::floor(l.as_double() / r.as_double()));
    case BinOp::Mod:
      if (l.is_string()) return Value::string(percent_format(*this, l.str(), r));
      if (!nums) bad_operands("%", l, r);
      if (r.as_double() == 0) fault("integer division or modulo by zero");
      if (ints) return Value::integer(r.as_int() == -1 ? 0 : py_mod(l.as_int(), r.as_int()));
      {
        const double b = r.as_double();
        double m = std::fmod(l.as_double(), b);
        if (m != 0 && ((m < 0) != (b < 0))) m += b;
        return Value::number(m);
      }
    case BinOp::Pow:
      if (!nums) bad_operands("**", l, r);
      if (ints && r.as_int() >= 0) {
        int64_t result = 1, base = l.as_int();
        for (int64_t k = r.as_int(); k > 0; k >>= 1) {
          if ((k & 1) && __builtin_mul_overflow(result, base, &result)) fault("integer overflow");
          if (k > 1 && __builtin_mul_overflow(base, base, &base)) fault("integer overflow");
        }
        return Value::integer(result);
      }
      if (l.as_double() == 0 && r.as_double() < 0) fault("0.0 cannot be raised to a negative power");
      return Value::number(std::pow(l.as_double(), r.as_double()));
    default: break;
  }
  fault("bad operator");
}

Value Interp::eval_compare(const Expr& e, Scope& scope) {
  Value left = eval(*e.a, scope);
  for (size_t i = 0; i < e.cmp.size(); ++i) {
    Value right = eval(*e.items[i], scope);
    pos = e.pos;
    bool r = false;
    switch (e.cmp[i]) {
      case CmpOp::Eq: r = equal(left, right, budget); break;
      case CmpOp::Ne: r = !equal(left, right, budget); break;
      case CmpOp::Lt: r = compare(left, right, budget) < 0; break;
      case CmpOp::Le: r = compare(left, right, budget) <= 0; break;
      case CmpOp::Gt: r = compare(left, right, budget) > 0; break;
      case CmpOp::Ge: r = compare(left, right, budget) >= 0; break;
      case CmpOp::In: r = contains(*this, right, left); break;
      case CmpOp::NotIn: r = !contains(*this, right, left); break;
    }
    if (!r) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

Value Interp::eval_slice(const Expr& e, Scope& scope) {
  const Value obj = eval(*e.items[0], scope);
  Value parts[3];
  for (int k = 0; k < 3; ++k) {
    if (e.items[k + 1]) parts[k] = eval(*e.items[k + 1], scope);
  }
  pos = e.pos;
  if (obj.is_undefined()) return obj;
  if (obj.is_string()) {
    const std::string& s = obj.str();
    std::string out;
    if (py::is_ascii(s)) {
      const auto idx = slice_indices(s.size(), parts[0], parts[1], parts[2]);
      budget.write(idx.size(), idx.size());
      out.reserve(idx.size());
      for (size_t i : idx) out += s[i];
    } else {
      const std::vector<size_t> off = py::offsets(s);
      const auto idx = slice_indices(off.size() - 1, parts[0], parts[1], parts[2]);
      for (size_t i : idx) out.append(s, off[i], off[i + 1] - off[i]);
      budget.write(out.size(), out.size());
    }
    return Value::string(std::move(out));
  }
  if (obj.is_list()) {
    const auto idx = slice_indices(obj.items().size(), parts[0], parts[1], parts[2]);
    budget.elements(idx.size());
    std::vector<Value> out;
    out.reserve(idx.size());
    for (size_t i : idx) out.push_back(obj.items()[i]);
    return Value::list(std::move(out), obj.is_tuple());
  }
  fault("'" + type_name(obj) + "' object is not subscriptable");
}

namespace {

Value apply_filters(Interp& in, const Expr& f, Value input, Scope& scope) {
  if (f.a) input = apply_filters(in, *f.a, std::move(input), scope);
  CallArgs args;
  for (const auto& x : f.items) args.pos.push_back(in.eval(*x, scope));
  for (const auto& [k, x] : f.kwargs) args.kw.emplace_back(k, in.eval(*x, scope));
  in.pos = f.pos;
  return call_filter(in, f.name, input, args);
}

}  // namespace

Value Interp::eval(const Expr& e, Scope& scope) {
  budget.step();
  switch (e.kind) {
    case ExprKind::Literal: return e.value;
    case ExprKind::Name: {
      if (const Value* v = scope.lookup(e.name)) return *v;
      if (const Value* g = find_global(e.name)) return *g;
      return Value::undefined(e.name);
    }
    case ExprKind::List:
    case ExprKind::Tuple: {
      std::vector<Value> items;
      items.reserve(e.items.size());
      for (const auto& x : e.items) items.push_back(eval(*x, scope));
      pos = e.pos;
      budget.elements(items.size());
      return Value::list(std::move(items), e.kind == ExprKind::Tuple);
    }
    case ExprKind::Dict: {
      DictData d;
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        Value k = eval(*e.items[i], scope);
        Value v = eval(*e.items[i + 1], scope);
        pos = e.items[i]->pos;
        if (!k.is_string()) fault("dict keys must be strings in chat templates, got " + type_name(k));
        budget.elements(1);
        d.set(k.str(), std::move(v));
      }
      pos = e.pos;
      return Value::dict(std::move(d));
    }
    case ExprKind::Attr: {
      const Value obj = eval(*e.a, scope);
      pos = e.pos;
      return get_attr(*this, obj, e.name);
    }
    case ExprKind::Item: {
      const Value obj = eval(*e.a, scope);
      const Value key = eval(*e.b, scope);
      pos = e.pos;
      return get_item(*this, obj, key);
    }
    case ExprKind::Slice: return eval_slice(e, scope);
    case ExprKind::Call: {
      const Value fn = eval(*e.a, scope);
      CallArgs args = eval_args(e, scope);
      pos = e.pos;
      return call(fn, args);
    }
    case ExprKind::Filter: {
      const Value input = eval(*e.a, scope);
      CallArgs args = eval_args(e, scope);
      pos = e.pos;
      return call_filter(*this, e.name, input, args);
    }
    case ExprKind::Test: {
      const Value v = eval(*e.a, scope);
      CallArgs args = eval_args(e, scope);
      pos = e.pos;
      return Value::boolean(call_test(*this, e.name, v, args) != e.negated);
    }
    case ExprKind::Neg:
    case ExprKind::Pos: {
      const Value v = eval(*e.a, scope);
      pos = e.pos;
      if (v.is_undefined()) undefined_operand(v);
      if (!v.is_number()) {
        fault(std::string("bad operand type for unary ") + (e.kind == ExprKind::Neg ? "-" : "+") + ": '" +
              type_name(v) + "'");
      }
      if (e.kind == ExprKind::Pos) return v.kind() == Kind::Bool ? Value::integer(v.as_int()) : v;
      if (v.kind() == Kind::Float) return Value::number(-v.as_double());
      if (v.as_int() == INT64_MIN) fault("integer overflow");
      return Value::integer(-v.as_int());
    }
    case ExprKind::Not: return Value::boolean(!eval(*e.a, scope).truthy());
    case ExprKind::Binary: return eval_binary(e, scope);
    case ExprKind::Compare: return eval_compare(e, scope);
    case ExprKind::Cond: {
      if (eval(*e.a, scope).truthy()) return eval(*e.b, scope);
      return e.c ? eval(*e.c, scope) : Value::undefined();
    }
  }
  fault("bad expression");
}

// ---- statements ----

namespace {

void bind_targets(const std::vector<std::string>& targets, const Value& v, Scope& scope) {
  if (targets.size() == 1) return scope.set(targets[0], v);
  if (!v.is_list()) fault("cannot unpack non-sequence " + type_name(v));
  if (v.items().size() != targets.size()) {
    fault("expected " + std::to_string(targets.size()) + " values to unpack, got " + std::to_string(v.items().size()));
  }
  for (size_t i = 0; i < targets.size(); ++i) scope.set(targets[i], v.items()[i]);
}

struct MacroFn : Callable {
  const Stmt* def;
  explicit MacroFn(const Stmt* d) : def(d) {}

  Value call(Interp& in, CallArgs& args) const override {
    if (in.call_depth >= in.options.limits.max_call_depth) {
      fault("macro calls nested deeper than " + std::to_string(in.options.limits.max_call_depth) + " levels");
    }
    ++in.call_depth;
    Scope frame;
    frame.parent = &in.root;
    std::vector<bool> used(args.kw.size(), false);
    for (size_t i = 0; i < def->params.size(); ++i) {
      const Param& p = def->params[i];
      const Value* v = i < args.pos.size() ? &args.pos[i] : nullptr;
      for (size_t k = 0; k < args.kw.size() && !v; ++k) {
        if (args.kw[k].first == p.name) v = &args.kw[k].second, used[k] = true;
      }
      if (v) frame.set(p.name, *v);
      else if (p.default_value) frame.set(p.name, in.eval(*p.default_value, frame));
      else frame.set(p.name, Value::undefined(p.name));
    }
    std::vector<Value> varargs;
    for (size_t i = def->params.size(); i < args.pos.size(); ++i) varargs.push_back(args.pos[i]);
    frame.set("varargs", Value::list(std::move(varargs), true));
    DictData kwargs;
    for (size_t k = 0; k < args.kw.size(); ++k) {
      if (used[k]) continue;
      if (args.kw[k].first == "caller") frame.set("caller", args.kw[k].second);
      else kwargs.set(args.kw[k].first, args.kw[k].second);
    }
    frame.set("kwargs", Value::dict(std::move(kwargs)));
    std::string text = in.capture(def->body, frame);
    --in.call_depth;
    return Value::string(std::move(text));
  }
  std::string name() const override { return def->text; }
};

// caller() inside a macro invoked by {% call %}: renders the call block's body
// in the scope around the call. It is only valid while that call runs.
struct CallerFn : Callable {
  const Stmt* def;
  Scope* scope;
  std::shared_ptr<bool> alive;
  CallerFn(const Stmt* d, Scope* s, std::shared_ptr<bool> a) : def(d), scope(s), alive(std::move(a)) {}

  Value call(Interp& in, CallArgs& args) const override {
    if (!*alive) fault("caller() used after its call block ended");
    if (in.call_depth >= in.options.limits.max_call_depth) {
      fault("macro calls nested deeper than " + std::to_string(in.options.limits.max_call_depth) + " levels");
    }
    ++in.call_depth;
    Scope frame;
    frame.parent = scope;
    for (size_t i = 0; i < def->params.size(); ++i) {
      const Param& p = def->params[i];
      const Value* v = i < args.pos.size() ? &args.pos[i] : nullptr;
      for (const auto& [k, x] : args.kw) {
        if (!v && k == p.name) v = &x;
      }
      if (v) frame.set(p.name, *v);
      else if (p.default_value) frame.set(p.name, in.eval(*p.default_value, frame));
      else frame.set(p.name, Value::undefined(p.name));
    }
    std::string text = in.capture(def->body, frame);
    --in.call_depth;
    return Value::string(std::move(text));
  }
  std::string name() const override { return "caller"; }
};

}  // namespace

Interp::Flow Interp::exec_for(const Stmt& s, Scope& scope) {
  const Value iterable = eval(*s.expr, scope);
  pos = s.pos;
  std::vector<Value> items = iterate(iterable);
  if (s.cond) {
    std::vector<Value> kept;
    for (Value& v : items) {
      Scope tmp;
      tmp.parent = &scope;
      bind_targets(s.targets, v, tmp);
      if (eval(*s.cond, tmp).truthy()) kept.push_back(std::move(v));
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec(s.else_body, scope);
  const auto all = std::make_shared<const std::vector<Value>>(std::move(items));
  const std::vector<Value>& list = *all;
  const size_t n = list.size();
  for (size_t i = 0; i < n; ++i) {
    budget.step();
    pos = s.pos;
    Scope iter;
    iter.parent = &scope;
    bind_targets(s.targets, list[i], iter);
    auto info = std::make_shared<LoopInfo>();
    info->items = all;
    info->index0 = i;
    iter.set("loop", Value::loop(std::move(info)));
    if (exec(s.body, iter) == Flow::Break) break;
  }
  return Flow::Normal;
}

void Interp::exec_set(const Stmt& s, Scope& scope) {
  Value v = eval(*s.expr, scope);
  pos = s.pos;
  if (!s.text.empty()) {
    const Value* target = scope.lookup(s.targets[0]);
    if (!target || target->kind() != Kind::Namespace) {
      fault("cannot assign attribute '" + s.text + "' on '" + s.targets[0] + "': not a namespace");
    }
    DictData& d = target->ns_data();
    d.set(s.text, std::move(v));
    if (d.depth > kMaxDepth) fault("value nested deeper than " + std::to_string(kMaxDepth) + " levels");
    return;
  }
  bind_targets(s.targets, v, scope);
}

void Interp::exec_call_block(const Stmt& s, Scope& scope) {
  const Expr& call_expr = *s.expr;
  const Value fn = eval(*call_expr.a, scope);
  CallArgs args = eval_args(call_expr, scope);
  auto alive = std::make_shared<bool>(true);
  args.kw.emplace_back("caller", Value::callable(std::make_shared<CallerFn>(&s, &scope, alive)));
  pos = s.pos;
  struct Kill {
    std::shared_ptr<bool>& a;
    ~Kill() { *a = false; }
  } kill{alive};
  emit_value(call(fn, args));
}

Interp::Flow Interp::exec(const Body& body, Scope& scope) {
  for (const StmtPtr& sp : body) {
    const Stmt& s = *sp;
    budget.step();
    pos = s.pos;
    switch (s.kind) {
      case StmtKind::Text: emit(s.text); break;
      case StmtKind::Output: emit_value(eval(*s.expr, scope)); break;
      case StmtKind::If: {
        const Body* chosen = &s.else_body;
        for (size_t i = 0; i < s.conds.size(); ++i) {
          if (eval(*s.conds[i], scope).truthy()) {
            chosen = &s.bodies[i];
            break;
          }
        }
        const Flow f = exec(*chosen, scope);
        if (f != Flow::Normal) return f;
        break;
      }
      case StmtKind::For: {
        const Flow f = exec_for(s, scope);
        if (f != Flow::Normal) return f;  // break/continue in a for-else belong to the outer loop
        break;
      }
      case StmtKind::Set: exec_set(s, scope); break;
      case StmtKind::SetBlock: {
        Value v = Value::string(capture(s.body, scope));
        for (const ExprPtr& f : s.filters) v = apply_filters(*this, *f, std::move(v), scope);
        scope.set(s.targets[0], std::move(v));
        break;
      }
      case StmtKind::Macro:
        scope.set(s.text, Value::callable(std::make_shared<MacroFn>(&s)));
        break;
      case StmtKind::CallBlock: exec_call_block(s, scope); break;
      case StmtKind::FilterBlock:
        emit_value(apply_filters(*this, *s.expr, Value::string(capture(s.body, scope)), scope));
        break;
      case StmtKind::With: {
        Scope inner;
        inner.parent = &scope;
        for (size_t i = 0; i < s.targets.size(); ++i) inner.set(s.targets[i], eval(*s.values[i], scope));
        const Flow f = exec(s.body, inner);
        if (f != Flow::Normal) return f;
        break;
      }
      case StmtKind::Break: return Flow::Break;
      case StmtKind::Continue: return Flow::Continue;
    }
  }
  return Flow::Normal;
}

}  // namespace pl::chat::jinja
