// Filters and tests. Semantics follow Jinja's built-ins, except tojson, which
// is transformers' override: json.dumps(x, ensure_ascii=False, indent=None,
// separators=None, sort_keys=False), so no HTML escaping and keys in order.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <unordered_map>

#include "chat/jinja_interp.h"
#include "chat/pystr.h"
#include "core/markup.h"

namespace pl::chat::jinja {

namespace {

using FilterFn = Value (*)(Interp&, const Value&, CallArgs&);
using TestFn = bool (*)(Interp&, const Value&, CallArgs&);

std::string str_of(Interp& in, const Value& v) { return to_str(v, in.budget); }

// A new string made by a filter: charged like any other write.
Value str_result(Interp& in, std::string s) {
  in.budget.write(s.size(), s.size());
  return Value::string(std::move(s));
}

Value no_args(const Value& result, CallArgs& args, const char* name) {
  ArgReader(args, std::string(name) + " filter").done();
  return result;
}

size_t length_of(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return 0;
    case Kind::String: return py::length(v.str());
    case Kind::List: return v.items().size();
    case Kind::Dict: return v.dict().size();
    default: fault("object of type '" + type_name(v) + "' has no len()");
  }
}

// Jinja's attribute getter: "a.b.0" walks dict keys / attributes / indices.
Value attr_path(Interp& in, const Value& v, const std::string& path) {
  Value cur = v;
  for (const std::string& part : py::split(path, std::string("."), -1)) {
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = get_item(in, cur, digits ? Value::integer(std::stoll(part.substr(0, 18))) : Value::string(part));
  }
  return cur;
}

// For sort/unique/min/max: the key a value is compared by.
Value sort_key(Interp& in, const Value& v, const Value& attribute, bool case_sensitive) {
  Value k = attribute.is_string() ? attr_path(in, v, attribute.str()) : v;
  if (!case_sensitive && k.is_string()) return Value::string(py::lower(k.str()));
  return k;
}

Value f_tojson(Interp& in, const Value& v, CallArgs& args) {
  ArgReader r(args, "tojson filter");
  JsonStyle st;
  st.ensure_ascii = r.get(0, "ensure_ascii", Value::boolean(false)).truthy();
  const Value indent = r.get(1, "indent", Value::none());
  const Value seps = r.get(2, "separators", Value::none());
  st.sort_keys = r.get(3, "sort_keys", Value::boolean(false)).truthy();
  r.done();
  if (indent.kind() == Kind::Int) {
    if (indent.as_int() > 64) fault("tojson: indent too large");
    st.indent = std::string(static_cast<size_t>(std::max<int64_t>(0, indent.as_int())), ' ');
  } else if (indent.is_string()) {
    if (indent.str().size() > 64) fault("tojson: indent too large");
    st.indent = indent.str();
  } else if (!indent.is_none()) {
    fault("tojson: indent must be an integer or a string");
  }
  if (st.indent) st.item_sep = ",";
  if (!seps.is_none()) {
    if (!seps.is_list() || seps.items().size() != 2 || !seps.items()[0].is_string() || !seps.items()[1].is_string()) {
      fault("tojson: separators must be a pair of strings");
    }
    st.item_sep = seps.items()[0].str();
    st.key_sep = seps.items()[1].str();
  }
  return Value::string(to_json(v, st, in.budget));  // to_json charges for what it writes
}

Value f_default(Interp&, const Value& v, CallArgs& args) {
  ArgReader r(args, "default filter");
  const Value fallback = r.get(0, "default_value", Value::string(""));
  const bool boolean = r.get(1, "boolean", Value::boolean(false)).truthy();
  r.done();
  if (v.is_undefined() || (boolean && !v.truthy())) return fallback;
  return v;
}

Value f_join(Interp& in, const Value& v, CallArgs& args) {
  ArgReader r(args, "join filter");
  const std::string sep = str_of(in, r.get(0, "d", Value::string("")));
  const Value attribute = r.get(1, "attribute", Value::none());
  r.done();
  std::string out;
  bool first = true;
  for (const Value& item : in.iterate(v)) {
    if (!first) out += sep;
    first = false;
    append_str(out, attribute.is_string() ? attr_path(in, item, attribute.str()) : item, in.budget);
    in.budget.size(out.size());
  }
  return str_result(in, std::move(out));
}

Value f_items(Interp& in, const Value& v, CallArgs& args) {
  ArgReader(args, "items filter").done();
  if (v.is_undefined()) return Value::list({});
  if (!v.is_dict()) fault("items filter: can only get items from a mapping, got " + type_name(v));
  std::vector<Value> out;
  in.budget.elements(3 * v.dict().size());
  for (const auto& [k, x] : v.dict().entries) out.push_back(Value::list({Value::string(k), x}, true));
  return Value::list(std::move(out));
}

Value f_dictsort(Interp& in, const Value& v, CallArgs& args) {
  ArgReader r(args, "dictsort filter");
  const bool case_sensitive = r.get(0, "case_sensitive", Value::boolean(false)).truthy();
  const Value by = r.get(1, "by", Value::string("key"));
  const bool reverse = r.get(2, "reverse", Value::boolean(false)).truthy();
  r.done();
  if (!v.is_dict()) fault("dictsort filter: expected a mapping, got " + type_name(v));
  const size_t pos = (by.is_string() && by.str() == "value") ? 1 : 0;
  CallArgs none;
  std::vector<Value> items = f_items(in, v, none).items();
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    const int c = compare(sort_key(in, a.items()[pos], Value(), case_sensitive),
                          sort_key(in, b.items()[pos], Value(), case_sensitive), in.budget);
    return reverse ? c > 0 : c < 0;
  });
  return Value::list(std::move(items));
}

Value f_sort(Interp& in, const Value& v, CallArgs& args) {
  ArgReader r(args, "sort filter");
  const bool reverse = r.get(0, "reverse", Value::boolean(false)).truthy();
  const bool case_sensitive = r.get(1, "case_sensitive", Value::boolean(false)).truthy();
  const Value attribute = r.get(2, "attribute", Value::none());
  r.done();
  std::vector<Value> items = in.iterate(v);
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    const int c = compare(sort_key(in, a, attribute, case_sensitive), sort_key(in, b, attribute, case_sensitive), in.budget);
    return reverse ? c > 0 : c < 0;
  });
  return Value::list(std::move(items));
}

Value f_unique(Interp& in, const Value& v, CallArgs& args) {
  ArgReader r(args, "unique filter");
  const bool case_sensitive = r.get(0, "case_sensitive", Value::boolean(false)).truthy();
  const Value attribute = r.get(1, "attribute", Value::none());
  r.done();
  std::vector<Value> out, seen;
  for (const Value& item : in.iterate(v)) {
    const Value k = sort_key(in, item, attribute, case_sensitive);
    bool dup = false;
    for (const Value& s : seen) dup = dup || equal(s, k, in.budget);
    if (dup) continue;
    seen.push_back(k);
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value min_max(Interp& in, const Value& v, CallArgs& args, bool want_max) {
  ArgReader r(args, want_max ? "max filter" : "min filter");
  const bool case_sensitive = r.get(0, "case_sensitive", Value::boolean(false)).truthy();
  const Value attribute = r.get(1, "attribute", Value::none());
  r.done();
  const std::vector<Value> items = in.iterate(v);
  if (items.empty()) return Value::undefined();
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    const int c = compare(sort_key(in, items[i], attribute, case_sensitive),
                          sort_key(in, items[best], attribute, case_sensitive), in.budget);
    if (want_max ? c > 0 : c < 0) best = i;
  }
  return items[best];
}

// select/reject (attr == nullptr) and selectattr/rejectattr.
Value select_impl(Interp& in, const Value& v, CallArgs& args, bool by_attr, bool keep) {
  std::vector<Value> pos = args.pos;
  if (!args.kw.empty()) fault("select filters take positional arguments only");
  Value attribute;
  if (by_attr) {
    if (pos.empty() || !pos[0].is_string()) fault("selectattr/rejectattr need an attribute name");
    attribute = pos[0];
    pos.erase(pos.begin());
  }
  std::string test;
  if (!pos.empty()) {
    if (!pos[0].is_string()) fault("select filters: the test name must be a string");
    test = pos[0].str();
    pos.erase(pos.begin());
    if (!has_test(test)) fault("no test named '" + test + "'");
  }
  std::vector<Value> out;
  if (!v.truthy()) return Value::list({});  // Jinja checks `if value:` first: none selects nothing
  for (const Value& item : in.iterate(v)) {
    const Value x = by_attr ? attr_path(in, item, attribute.str()) : item;
    bool ok;
    if (test.empty()) {
      ok = x.truthy();
    } else {
      CallArgs targs;
      targs.pos = pos;
      ok = call_test(in, test, x, targs);
    }
    if (ok == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value f_map(Interp& in, const Value& v, CallArgs& args) {
  std::vector<Value> out;
  if (!v.truthy()) return Value::list({});  // as select: a falsy input maps to nothing
  const Value* attribute = nullptr;
  const Value* fallback = nullptr;
  for (const auto& [k, x] : args.kw) {
    if (k == "attribute") attribute = &x;
    else if (k == "default") fallback = &x;
  }
  if (attribute) {
    if (!attribute->is_string()) fault("map filter: attribute must be a string");
    for (const Value& item : in.iterate(v)) {
      Value x = attr_path(in, item, attribute->str());
      out.push_back(x.is_undefined() && fallback ? *fallback : x);
    }
    return Value::list(std::move(out));
  }
  if (args.pos.empty() || !args.pos[0].is_string()) fault("map filter needs a filter name or attribute=");
  const std::string name = args.pos[0].str();
  if (!has_filter(name)) fault("no filter named '" + name + "'");
  for (const Value& item : in.iterate(v)) {
    CallArgs fargs;
    fargs.pos.assign(args.pos.begin() + 1, args.pos.end());
    fargs.kw = args.kw;
    out.push_back(call_filter(in, name, item, fargs));
  }
  return Value::list(std::move(out));
}

Value f_int(Interp& in, const Value& v, CallArgs& args) {
  ArgReader r(args, "int filter");
  const Value fallback = r.get(0, "default", Value::integer(0));
  const int64_t base = r.get(1, "base", Value::integer(10)).as_int();
  r.done();
  switch (v.kind()) {
    case Kind::Int: return v;
    case Kind::Bool: return Value::integer(v.as_int());
    case Kind::Float:
      if (!std::isfinite(v.as_double()) || std::fabs(v.as_double()) >= 9.2e18) return fallback;
      return Value::integer(static_cast<int64_t>(v.as_double()));
    case Kind::String: {
      std::string s = py::strip(v.str(), true, true, std::nullopt);
      s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
      if (s.empty() || base < 2 || base > 36) return fallback;
      errno = 0;
      char* end = nullptr;
      const long long x = std::strtoll(s.c_str(), &end, static_cast<int>(base));
      if (errno == 0 && end && *end == '\0') return Value::integer(x);
      const double d = std::strtod(s.c_str(), &end);
      if (base == 10 && end && *end == '\0' && std::isfinite(d) && std::fabs(d) < 9.2e18) {
        return Value::integer(static_cast<int64_t>(d));
      }
      return fallback;
    }
    default: (void)in; return fallback;
  }
}

Value f_float(Interp&, const Value& v, CallArgs& args) {
  ArgReader r(args, "float filter");
  const Value fallback = r.get(0, "default", Value::number(0.0));
  r.done();
  if (v.is_number()) return Value::number(v.as_double());
  if (v.is_string()) {
    const std::string s = py::strip(v.str(), true, true, std::nullopt);
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == '\0') return Value::number(d);
  }
  return fallback;
}

Value f_round(Interp&, const Value& v, CallArgs& args) {
  ArgReader r(args, "round filter");
  const int64_t precision = r.get(0, "precision", Value::integer(0)).as_int();
  const Value method = r.get(1, "method", Value::string("common"));
  r.done();
  if (!v.is_number()) fault("round filter: expected a number, got " + type_name(v));
  if (!method.is_string() || (method.str() != "common" && method.str() != "ceil" && method.str() != "floor")) {
    fault("round filter: method must be common, ceil or floor");
  }
  if (method.str() == "common" && v.kind() != Kind::Float && precision >= 0) return Value::integer(v.as_int());
  const double scale = std::pow(10.0, static_cast<double>(std::clamp<int64_t>(precision, -300, 300)));
  const double x = v.as_double() * scale;
  const double y = method.str() == "ceil" ? std::ceil(x) : method.str() == "floor" ? std::floor(x) : std::nearbyint(x);
  return Value::number(y / scale);
}

Value f_indent(Interp& in, const Value& v, CallArgs& args) {
  ArgReader r(args, "indent filter");
  const Value width = r.get(0, "width", Value::integer(4));
  const bool first = r.get(1, "first", Value::boolean(false)).truthy();
  const bool blank = r.get(2, "blank", Value::boolean(false)).truthy();
  r.done();
  std::string ind;
  if (width.is_string()) ind = width.str();
  else ind.assign(static_cast<size_t>(std::clamp<int64_t>(int64_t{width.as_int()}, 0, 256)), ' ');
  const std::vector<std::string> lines = py::splitlines(str_of(in, v) + "\n", false);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += '\n';
    if (i && (blank || !lines[i].empty())) out += ind;
    out += lines[i];
    in.budget.write(out.size(), lines[i].size());
  }
  if (first) out = ind + out;
  return str_result(in, std::move(out));
}

Value f_format(Interp& in, const Value& v, CallArgs& args) {
  if (!args.pos.empty() && !args.kw.empty()) fault("format filter: can't mix positional and keyword arguments");
  if (!args.kw.empty()) {
    DictData d;
    for (const auto& [k, x] : args.kw) d.set(k, x);
    return Value::string(percent_format(in, str_of(in, v), Value::dict(std::move(d))));
  }
  in.budget.elements(args.pos.size());
  return Value::string(percent_format(in, str_of(in, v), Value::list(args.pos, true)));
}

Value f_first_last(Interp& in, const Value& v, CallArgs& args, bool last) {
  ArgReader(args, last ? "last filter" : "first filter").done();
  if (v.is_list()) {
    if (v.items().empty()) return Value::undefined();
    return last ? v.items().back() : v.items().front();
  }
  const std::vector<Value> items = in.iterate(v);
  if (items.empty()) return Value::undefined();
  return last ? items.back() : items.front();
}

const std::unordered_map<std::string, FilterFn>& filters() {
  static const std::unordered_map<std::string, FilterFn> kFilters = {
      {"abs", [](Interp&, const Value& v, CallArgs& a) {
         if (!v.is_number()) fault("bad operand type for abs(): '" + type_name(v) + "'");
         if (v.kind() == Kind::Float) return no_args(Value::number(std::fabs(v.as_double())), a, "abs");
         if (v.as_int() == INT64_MIN) fault("integer overflow");
         return no_args(Value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int()), a, "abs");
       }},
      {"attr", [](Interp& in, const Value& v, CallArgs& a) {
         ArgReader r(a, "attr filter");
         const Value name = r.get(0, "name", Value());
         r.done();
         if (!name.is_string()) fault("attr filter: the name must be a string");
         return get_attr(in, v, name.str());
       }},
      {"capitalize", [](Interp& in, const Value& v, CallArgs& a) { return no_args(str_result(in, py::capitalize(str_of(in, v))), a, "capitalize"); }},
      {"count", [](Interp&, const Value& v, CallArgs& a) { return no_args(Value::integer(static_cast<int64_t>(length_of(v))), a, "count"); }},
      {"length", [](Interp&, const Value& v, CallArgs& a) { return no_args(Value::integer(static_cast<int64_t>(length_of(v))), a, "length"); }},
      {"d", f_default},
      {"default", f_default},
      {"dictsort", f_dictsort},
      {"e", [](Interp& in, const Value& v, CallArgs& a) { return no_args(str_result(in, markup_escape(str_of(in, v))), a, "escape"); }},
      {"escape", [](Interp& in, const Value& v, CallArgs& a) { return no_args(str_result(in, markup_escape(str_of(in, v))), a, "escape"); }},
      {"first", [](Interp& in, const Value& v, CallArgs& a) { return f_first_last(in, v, a, false); }},
      {"last", [](Interp& in, const Value& v, CallArgs& a) { return f_first_last(in, v, a, true); }},
      {"float", f_float},
      {"format", f_format},
      {"indent", f_indent},
      {"int", f_int},
      {"items", f_items},
      {"join", f_join},
      {"list", [](Interp& in, const Value& v, CallArgs& a) { return no_args(Value::list(in.iterate(v)), a, "list"); }},
      {"lower", [](Interp& in, const Value& v, CallArgs& a) { return no_args(str_result(in, py::lower(str_of(in, v))), a, "lower"); }},
      {"upper", [](Interp& in, const Value& v, CallArgs& a) { return no_args(str_result(in, py::upper(str_of(in, v))), a, "upper"); }},
      {"map", f_map},
      {"max", [](Interp& in, const Value& v, CallArgs& a) { return min_max(in, v, a, true); }},
      {"min", [](Interp& in, const Value& v, CallArgs& a) { return min_max(in, v, a, false); }},
      {"reject", [](Interp& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, false, false); }},
      {"rejectattr", [](Interp& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, true, false); }},
      {"select", [](Interp& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, false, true); }},
      {"selectattr", [](Interp& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, true, true); }},
      {"replace", [](Interp& in, const Value& v, CallArgs& a) {
         ArgReader r(a, "replace filter");
         const std::string old = str_of(in, r.get(0, "old", Value()));
         const std::string repl = str_of(in, r.get(1, "new", Value()));
         const Value count = r.get(2, "count", Value::none());
         r.done();
         std::string out = py::replace(str_of(in, v), old, repl, count.is_number() ? count.as_int() : -1);
         in.budget.write(out.size(), out.size());
         return Value::string(std::move(out));
       }},
      {"reverse", [](Interp& in, const Value& v, CallArgs& a) {
         ArgReader(a, "reverse filter").done();
         std::vector<Value> items = in.iterate(v);
         std::reverse(items.begin(), items.end());
         if (!v.is_string()) return Value::list(std::move(items));
         std::string out;
         for (const Value& c : items) out += c.str();
         return str_result(in, std::move(out));
       }},
      {"round", f_round},
      {"safe", [](Interp&, const Value& v, CallArgs& a) { return no_args(v, a, "safe"); }},
      {"sort", f_sort},
      {"string", [](Interp& in, const Value& v, CallArgs& a) {
         return no_args(v.is_string() ? v : str_result(in, str_of(in, v)), a, "string");
       }},
      {"sum", [](Interp& in, const Value& v, CallArgs& a) {
         ArgReader r(a, "sum filter");
         const Value attribute = r.get(0, "attribute", Value::none());
         Value total = r.get(1, "start", Value::integer(0));
         r.done();
         for (const Value& item : in.iterate(v)) {
           const Value x = attribute.is_string() ? attr_path(in, item, attribute.str()) : item;
           if (!x.is_number() || !total.is_number()) fault("sum filter: can only add numbers");
           if (x.kind() == Kind::Float || total.kind() == Kind::Float) {
             total = Value::number(total.as_double() + x.as_double());
           } else {
             int64_t s;
             if (__builtin_add_overflow(total.as_int(), x.as_int(), &s)) fault("integer overflow");
             total = Value::integer(s);
           }
         }
         return total;
       }},
      {"title", [](Interp& in, const Value& v, CallArgs& a) {
         // Jinja's title: each word (split at whitespace, '-', brackets) gets its
         // first character upper-cased and the rest lower-cased.
         const std::string s = str_of(in, v);
         std::string out;
         bool start = true;
         for (size_t i = 0; i < s.size();) {
           const size_t b = i;
           const uint32_t cp = py::decode_utf8(s, i);
           const std::string_view ch = std::string_view(s).substr(b, i - b);
           if (py::is_space(cp) || std::string_view("-({[<").find(static_cast<char>(cp)) != std::string_view::npos) {
             out += ch;
             start = true;
           } else {
             out += start ? py::upper(ch) : py::lower(ch);
             start = false;
           }
         }
         return no_args(str_result(in, std::move(out)), a, "title");
       }},
      {"wordcount", [](Interp& in, const Value& v, CallArgs& a) {
         // Runs of word characters (\w: letters, digits, underscore; any non-ASCII counts as a letter).
         const std::string s = str_of(in, v);
         int64_t n = 0;
         bool in_word = false;
         for (unsigned char c : s) {
           const bool w = c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
           if (w && !in_word) ++n;
           in_word = w;
         }
         return no_args(Value::integer(n), a, "wordcount");
       }},
      {"tojson", f_tojson},
      {"trim", [](Interp& in, const Value& v, CallArgs& a) {
         ArgReader r(a, "trim filter");
         const Value chars = r.get(0, "chars", Value::none());
         r.done();
         std::optional<std::string> set;
         if (chars.is_string()) set = chars.str();
         return str_result(in, py::strip(str_of(in, v), true, true, set));
       }},
      {"unique", f_unique},
  };
  return kFilters;
}

bool test_cmp(Interp& in, const Value& v, CallArgs& a, int want) {
  ArgReader r(a, "comparison test");
  const Value other = r.get(0, "other", Value());
  r.done();
  const int c = compare(v, other, in.budget);
  switch (want) {
    case 0: return c < 0;
    case 1: return c <= 0;
    case 2: return c > 0;
    default: return c >= 0;
  }
}

bool test_eq(Interp& in, const Value& v, CallArgs& a) {
  ArgReader r(a, "equalto test");
  const Value other = r.get(0, "other", Value());
  r.done();
  return equal(v, other, in.budget);
}

// A test that takes no arguments.
#define PL_SIMPLE_TEST(expr)                            \
  [](Interp&, const Value& v, CallArgs& a) {            \
    ArgReader(a, "test").done();                        \
    return static_cast<bool>(expr);                     \
  }

const std::unordered_map<std::string, TestFn>& tests() {
  static const std::unordered_map<std::string, TestFn> kTests = {
      {"defined", PL_SIMPLE_TEST(!v.is_undefined())},
      {"undefined", PL_SIMPLE_TEST(v.is_undefined())},
      {"none", PL_SIMPLE_TEST(v.is_none())},
      {"boolean", PL_SIMPLE_TEST(v.kind() == Kind::Bool)},
      {"true", PL_SIMPLE_TEST(v.kind() == Kind::Bool && v.as_bool())},
      {"false", PL_SIMPLE_TEST(v.kind() == Kind::Bool && !v.as_bool())},
      {"integer", PL_SIMPLE_TEST(v.kind() == Kind::Int)},
      {"float", PL_SIMPLE_TEST(v.kind() == Kind::Float)},
      {"number", PL_SIMPLE_TEST(v.is_number())},
      {"string", PL_SIMPLE_TEST(v.is_string())},
      {"mapping", PL_SIMPLE_TEST(v.is_dict())},
      // Python iter() and len()+[] both work on str, list, dict and Jinja's Undefined.
      {"iterable", PL_SIMPLE_TEST(v.is_string() || v.is_list() || v.is_dict() || v.is_undefined())},
      {"sequence", PL_SIMPLE_TEST(v.is_string() || v.is_list() || v.is_dict() || v.is_undefined())},
      {"callable", PL_SIMPLE_TEST(v.kind() == Kind::Callable)},
      {"escaped", PL_SIMPLE_TEST(false && v.is_none())},
      {"odd", [](Interp&, const Value& v, CallArgs& a) {
         ArgReader(a, "odd test").done();
         if (!v.is_number() || v.kind() == Kind::Float) fault("odd test: expected an integer");
         return (v.as_int() & 1) != 0;
       }},
      {"even", [](Interp&, const Value& v, CallArgs& a) {
         ArgReader(a, "even test").done();
         if (!v.is_number() || v.kind() == Kind::Float) fault("even test: expected an integer");
         return (v.as_int() & 1) == 0;
       }},
      {"divisibleby", [](Interp&, const Value& v, CallArgs& a) {
         ArgReader r(a, "divisibleby test");
         const Value n = r.get(0, "num", Value());
         r.done();
         if (!v.is_number() || !n.is_number() || v.kind() == Kind::Float || n.kind() == Kind::Float) {
           fault("divisibleby test: expected integers");
         }
         if (n.as_int() == 0) fault("integer division or modulo by zero");
         return n.as_int() == -1 || v.as_int() % n.as_int() == 0;
       }},
      {"eq", test_eq}, {"equalto", test_eq}, {"==", test_eq},
      {"ne", [](Interp& in, const Value& v, CallArgs& a) { return !test_eq(in, v, a); }},
      {"!=", [](Interp& in, const Value& v, CallArgs& a) { return !test_eq(in, v, a); }},
      {"lt", [](Interp& in, const Value& v, CallArgs& a) { return test_cmp(in, v, a, 0); }},
      {"lessthan", [](Interp& in, const Value& v, CallArgs& a) { return test_cmp(in, v, a, 0); }},
      {"<", [](Interp& in, const Value& v, CallArgs& a) { return test_cmp(in, v, a, 0); }},
      {"le", [](Interp& in, const Value& v, CallArgs& a) { return test_cmp(in, v, a, 1); }},
      {"<=", [](Interp& in, const Value& v, CallArgs& a) { return test_cmp(in, v, a, 1); }},
      {"gt", [](Interp& in, const Value& v, CallArgs& a) { return test_cmp(in, v, a, 2); }},
      {"greaterthan", [](Interp& in, const Value& v, CallArgs& a) { return test_cmp(in, v, a, 2); }},
      {">", [](Interp& in, const Value& v, CallArgs& a) { return test_cmp(in, v, a, 2); }},
      {"ge", [](Interp& in, const Value& v, CallArgs& a) { return test_cmp(in, v, a, 3); }},
      {">=", [](Interp& in, const Value& v, CallArgs& a) { return test_cmp(in, v, a, 3); }},
      {"in", [](Interp& in, const Value& v, CallArgs& a) {
         ArgReader r(a, "in test");
         const Value seq = r.get(0, "seq", Value());
         r.done();
         return contains(in, seq, v);
       }},
      {"sameas", [](Interp& in, const Value& v, CallArgs& a) {
         ArgReader r(a, "sameas test");
         const Value other = r.get(0, "other", Value());
         r.done();
         if (v.kind() != other.kind()) return false;
         if (v.is_string() || v.is_list() || v.is_dict() || v.kind() == Kind::Namespace || v.kind() == Kind::Callable) {
           return v.identity() == other.identity();
         }
         return equal(v, other, in.budget);
       }},
      {"lower", [](Interp& in, const Value& v, CallArgs& a) {
         ArgReader(a, "lower test").done();
         const std::string s = str_of(in, v);
         return py::lower(s) == s && py::upper(s) != s;
       }},
      {"upper", [](Interp& in, const Value& v, CallArgs& a) {
         ArgReader(a, "upper test").done();
         const std::string s = str_of(in, v);
         return py::upper(s) == s && py::lower(s) != s;
       }},
  };
  return kTests;
}

}  // namespace

bool has_filter(const std::string& name) { return filters().count(name) != 0; }
bool has_test(const std::string& name) { return tests().count(name) != 0; }

Value call_filter(Interp& in, const std::string& name, const Value& input, CallArgs& args) {
  in.budget.step();
  const auto it = filters().find(name);
  if (it == filters().end()) fault("no filter named '" + name + "'");
  return it->second(in, input, args);
}

bool call_test(Interp& in, const std::string& name, const Value& v, CallArgs& args) {
  in.budget.step();
  const auto it = tests().find(name);
  if (it == tests().end()) fault("no test named '" + name + "'");
  return it->second(in, v, args);
}

}  // namespace pl::chat::jinja
