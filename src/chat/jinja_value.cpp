#include "chat/jinja_value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "chat/pystr.h"

namespace pl::chat::jinja {

void fault(const std::string& msg) { throw Fault(msg); }

namespace {
const std::string kEmpty;
}  // namespace

Value Value::undefined(std::string name) {
  Value v;
  if (!name.empty()) v.ptr_ = std::make_shared<std::string>(std::move(name));
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::None;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::Bool;
  v.b_ = b;
  v.i_ = b ? 1 : 0;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::Int;
  v.i_ = i;
  return v;
}

Value Value::number(double f) {
  Value v;
  v.kind_ = Kind::Float;
  v.f_ = f;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::String;
  v.ptr_ = std::make_shared<std::string>(std::move(s));
  return v;
}

Value Value::list(std::vector<Value> items, bool tuple) {
  auto d = std::make_shared<ListData>();
  for (const Value& x : items) d->depth = std::max(d->depth, x.depth() + 1);
  if (d->depth > kMaxDepth) fault("value nested deeper than " + std::to_string(kMaxDepth) + " levels");
  d->items = std::move(items);
  d->tuple = tuple;
  Value v;
  v.kind_ = Kind::List;
  v.ptr_ = std::move(d);
  return v;
}

Value Value::dict(DictData d) {
  if (d.depth > kMaxDepth) fault("value nested deeper than " + std::to_string(kMaxDepth) + " levels");
  Value v;
  v.kind_ = Kind::Dict;
  v.ptr_ = std::make_shared<DictData>(std::move(d));
  return v;
}

Value Value::ns(DictData d) {
  Value v;
  v.kind_ = Kind::Namespace;
  v.ptr_ = std::make_shared<DictData>(std::move(d));
  return v;
}

Value Value::callable(std::shared_ptr<const Callable> fn) {
  Value v;
  v.kind_ = Kind::Callable;
  v.ptr_ = std::const_pointer_cast<Callable>(std::move(fn));
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& j, uint32_t depth) {
  if (depth >= kMaxDepth) fault("context nested deeper than " + std::to_string(kMaxDepth) + " levels");
  using T = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case T::null: return none();
    case T::boolean: return boolean(j.get<bool>());
    case T::number_integer: return integer(j.get<int64_t>());
    case T::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      return u <= static_cast<uint64_t>(INT64_MAX) ? integer(static_cast<int64_t>(u)) : number(static_cast<double>(u));
    }
    case T::number_float: return number(j.get<double>());
    case T::string: return string(j.get<std::string>());
    case T::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& x : j) items.push_back(from_json(x, depth + 1));
      return list(std::move(items));
    }
    case T::object: {
      DictData d;
      for (const auto& [k, x] : j.items()) d.set(k, from_json(x, depth + 1));
      return dict(std::move(d));
    }
    default: fault("context holds a value JSON templates cannot use (binary or discarded)");
  }
}

Value Value::loop(std::shared_ptr<const LoopInfo> info) {
  Value v;
  v.kind_ = Kind::Loop;
  v.ptr_ = std::const_pointer_cast<LoopInfo>(std::move(info));
  return v;
}

bool Value::is_tuple() const { return kind_ == Kind::List && static_cast<const ListData*>(ptr_.get())->tuple; }

bool Value::truthy() const {
  switch (kind_) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return b_;
    case Kind::Int: return i_ != 0;
    case Kind::Float: return f_ != 0;
    case Kind::String: return !str().empty();
    case Kind::List: return !items().empty();
    case Kind::Dict: return dict().size() != 0;
    case Kind::Namespace:
    case Kind::Callable:
    case Kind::Loop: return true;
  }
  return false;
}

const std::string& Value::str() const { return *static_cast<const std::string*>(ptr_.get()); }
const std::vector<Value>& Value::items() const { return static_cast<const ListData*>(ptr_.get())->items; }
const DictData& Value::dict() const { return *static_cast<const DictData*>(ptr_.get()); }
DictData& Value::ns_data() const { return *static_cast<DictData*>(ptr_.get()); }
const Callable& Value::fn() const { return *static_cast<const Callable*>(ptr_.get()); }
const LoopInfo& Value::loop_info() const { return *static_cast<const LoopInfo*>(ptr_.get()); }

const std::string& Value::undefined_name() const {
  return (kind_ == Kind::Undefined && ptr_) ? *static_cast<const std::string*>(ptr_.get()) : kEmpty;
}

uint32_t Value::depth() const {
  if (kind_ == Kind::List) return static_cast<const ListData*>(ptr_.get())->depth;
  if (kind_ == Kind::Dict) return dict().depth;
  return 0;
}

const Value* DictData::find(std::string_view key) const {
  if (entries.size() > kIndexFrom) {
    const auto it = index_.find(std::string(key));
    return it == index_.end() ? nullptr : &entries[it->second].second;
  }
  for (const auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

void DictData::set(std::string key, Value v) {
  depth = std::max(depth, v.depth() + 1);
  if (const Value* old = find(key)) {
    *const_cast<Value*>(old) = std::move(v);
    return;
  }
  entries.emplace_back(std::move(key), std::move(v));
  if (entries.size() > kIndexFrom) {
    if (index_.empty()) {
      for (size_t i = 0; i < entries.size(); ++i) index_.emplace(entries[i].first, i);
    } else {
      index_.emplace(entries.back().first, entries.size() - 1);
    }
  }
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List: return v.is_tuple() ? "tuple" : "list";
    case Kind::Dict: return "dict";
    case Kind::Namespace: return "Namespace";
    case Kind::Callable: return "function";
    case Kind::Loop: return "LoopContext";
  }
  return "?";
}

namespace {

void append_repr(std::string& out, const Value& v, Budget& budget, uint32_t depth);

void append_checked(std::string& out, std::string_view s, Budget& budget) {
  budget.write(out.size() + s.size(), s.size());
  out += s;
}

void append_scalar(std::string& out, const Value& v, Budget& budget) {
  switch (v.kind()) {
    case Kind::Undefined: return;
    case Kind::None: return append_checked(out, "None", budget);
    case Kind::Bool: return append_checked(out, v.as_bool() ? "True" : "False", budget);
    case Kind::Int: return append_checked(out, std::to_string(v.as_int()), budget);
    case Kind::Float: return append_checked(out, py::float_repr(v.as_double()), budget);
    case Kind::String: return append_checked(out, v.str(), budget);
    case Kind::Callable: return append_checked(out, "<function " + v.fn().name() + ">", budget);
    case Kind::Loop: {
      const LoopInfo& l = v.loop_info();
      return append_checked(out, "<LoopContext " + std::to_string(l.index0 + 1) + "/" + std::to_string(l.items->size()) + ">", budget);
    }
    default: return;
  }
}

// A namespace can hold itself (ns.me = ns), so printing counts its depth.
void append_container(std::string& out, const Value& v, Budget& budget, uint32_t depth) {
  if (depth > kMaxDepth) fault("value nested deeper than " + std::to_string(kMaxDepth) + " levels");
  budget.step();
  if (v.kind() == Kind::List) {
    const bool tuple = v.is_tuple();
    append_checked(out, tuple ? "(" : "[", budget);
    const auto& items = v.items();
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) append_checked(out, ", ", budget);
      append_repr(out, items[i], budget, depth + 1);
    }
    if (tuple && items.size() == 1) append_checked(out, ",", budget);
    append_checked(out, tuple ? ")" : "]", budget);
    return;
  }
  const bool ns = v.kind() == Kind::Namespace;
  const DictData& d = ns ? v.ns_data() : v.dict();
  append_checked(out, ns ? "<Namespace {" : "{", budget);
  for (size_t i = 0; i < d.entries.size(); ++i) {
    if (i) append_checked(out, ", ", budget);
    append_checked(out, py::repr(d.entries[i].first), budget);
    append_checked(out, ": ", budget);
    append_repr(out, d.entries[i].second, budget, depth + 1);
  }
  append_checked(out, ns ? "}>" : "}", budget);
}

void append_repr(std::string& out, const Value& v, Budget& budget, uint32_t depth) {
  switch (v.kind()) {
    case Kind::String: return append_checked(out, py::repr(v.str()), budget);
    case Kind::Undefined: return append_checked(out, "Undefined", budget);
    case Kind::List:
    case Kind::Dict:
    case Kind::Namespace: return append_container(out, v, budget, depth);
    default: return append_scalar(out, v, budget);
  }
}

}  // namespace

void append_str(std::string& out, const Value& v, Budget& budget) {
  switch (v.kind()) {
    case Kind::List:
    case Kind::Dict:
    case Kind::Namespace: return append_container(out, v, budget, 0);
    default: return append_scalar(out, v, budget);
  }
}

std::string to_str(const Value& v, Budget& budget) {
  if (v.kind() == Kind::String) return v.str();
  std::string out;
  append_str(out, v, budget);
  return out;
}

std::string to_repr(const Value& v, Budget& budget) {
  std::string out;
  append_repr(out, v, budget, 0);
  return out;
}

namespace {

void json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  py::append_json_string(out, s, ensure_ascii ? py::JsonDialect::PythonAscii : py::JsonDialect::Python);
}

void json_value(std::string& out, const Value& v, const JsonStyle& st, int level, Budget& budget) {
  budget.step();
  budget.size(out.size());
  auto newline = [&](int lv) {
    if (!st.indent) return;
    out += '\n';
    for (int i = 0; i < lv; ++i) {
      out += *st.indent;
      budget.write(out.size(), st.indent->size());
    }
  };
  switch (v.kind()) {
    case Kind::None: out += "null"; return;
    case Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
    case Kind::Int: out += std::to_string(v.as_int()); return;
    case Kind::Float: {
      const double d = v.as_double();
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d < 0 ? "-Infinity" : "Infinity";
      else out += py::float_repr(d);
      return;
    }
    case Kind::String: json_string(out, v.str(), st.ensure_ascii); return;
    case Kind::List: {
      const auto& items = v.items();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += st.item_sep;
        newline(level + 1);
        json_value(out, items[i], st, level + 1, budget);
      }
      newline(level);
      out += ']';
      return;
    }
    case Kind::Dict: {
      const DictData& d = v.dict();
      if (d.size() == 0) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> order;
      for (const auto& e : d.entries) order.push_back(&e);
      if (st.sort_keys) {
        std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
      }
      out += '{';
      for (size_t i = 0; i < order.size(); ++i) {
        if (i) out += st.item_sep;
        newline(level + 1);
        json_string(out, order[i]->first, st.ensure_ascii);
        out += st.key_sep;
        json_value(out, order[i]->second, st, level + 1, budget);
      }
      newline(level);
      out += '}';
      return;
    }
    default: fault("Object of type " + type_name(v) + " is not JSON serializable");
  }
}

}  // namespace

std::string to_json(const Value& v, const JsonStyle& style, Budget& budget) {
  std::string out;
  json_value(out, v, style, 0, budget);
  budget.write(out.size(), out.size());
  return out;
}

bool equal(const Value& a, const Value& b, Budget& budget) {
  budget.step();
  if (a.is_number() && b.is_number()) {
    if (a.kind() != Kind::Float && b.kind() != Kind::Float) return a.as_int() == b.as_int();
    return a.as_double() == b.as_double();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::Undefined:
    case Kind::None: return true;
    case Kind::String: return a.str() == b.str();
    case Kind::List: {
      if (a.is_tuple() != b.is_tuple() || a.items().size() != b.items().size()) return false;
      for (size_t i = 0; i < a.items().size(); ++i) {
        if (!equal(a.items()[i], b.items()[i], budget)) return false;
      }
      return true;
    }
    case Kind::Dict: {
      const DictData& x = a.dict();
      const DictData& y = b.dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.entries) {
        const Value* w = y.find(k);
        if (!w || !equal(v, *w, budget)) return false;
      }
      return true;
    }
    default: return a.identity() == b.identity();
  }
}

int compare(const Value& a, const Value& b, Budget& budget) {
  budget.step();
  if (a.is_number() && b.is_number()) {
    if (a.kind() != Kind::Float && b.kind() != Kind::Float) {
      return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
    }
    const double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.str().compare(b.str());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list()) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equal(x[i], y[i], budget)) return compare(x[i], y[i], budget);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  fault("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

}  // namespace pl::chat::jinja
