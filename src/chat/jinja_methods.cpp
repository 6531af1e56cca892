// Attribute and item access, the str/dict/list methods templates call, the
// global functions, and Python's two string-formatting mini-languages.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>

#include "chat/jinja_interp.h"
#include "chat/pystr.h"

namespace pl::chat::jinja {

// ---- argument reading ----

const Value* ArgReader::find(size_t index, std::string_view name) {
  used_pos_.resize(args_.pos.size(), false);
  used_kw_.resize(args_.kw.size(), false);
  if (index < args_.pos.size()) {
    used_pos_[index] = true;
    return &args_.pos[index];
  }
  for (size_t k = 0; k < args_.kw.size(); ++k) {
    if (args_.kw[k].first == name) {
      used_kw_[k] = true;
      return &args_.kw[k].second;
    }
  }
  return nullptr;
}

Value ArgReader::get(size_t index, std::string_view name, Value fallback) {
  const Value* v = find(index, name);
  return v ? *v : std::move(fallback);
}

std::vector<Value> ArgReader::rest(size_t index) {
  used_pos_.resize(args_.pos.size(), false);
  std::vector<Value> out;
  for (size_t i = index; i < args_.pos.size(); ++i) {
    used_pos_[i] = true;
    out.push_back(args_.pos[i]);
  }
  return out;
}

void ArgReader::done() {
  used_pos_.resize(args_.pos.size(), false);
  used_kw_.resize(args_.kw.size(), false);
  for (size_t i = 0; i < used_pos_.size(); ++i) {
    if (!used_pos_[i]) fault(what_ + " got too many positional arguments");
  }
  for (size_t k = 0; k < used_kw_.size(); ++k) {
    if (!used_kw_[k]) fault(what_ + " got an unexpected keyword argument '" + args_.kw[k].first + "'");
  }
}

namespace {

int64_t int_arg(const Value& v, const std::string& what) {
  if (v.kind() != Kind::Int && v.kind() != Kind::Bool) fault(what + " expects an integer, got " + type_name(v));
  return v.as_int();
}

std::optional<std::string> opt_str_arg(const Value& v, const std::string& what) {
  if (v.is_none() || v.is_undefined()) return std::nullopt;
  if (!v.is_string()) fault(what + " expects a string, got " + type_name(v));
  return v.str();
}

const std::string& str_arg(const Value& v, const std::string& what) {
  if (!v.is_string()) fault(what + " expects a string, got " + type_name(v));
  return v.str();
}

Value str_list(Interp& in, std::vector<std::string> parts) {
  in.budget.elements(parts.size());
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.push_back(Value::string(std::move(p)));
  return Value::list(std::move(items));
}

// Code-point index of a byte offset.
int64_t cp_index(const std::string& s, size_t byte) {
  return static_cast<int64_t>(py::length(std::string_view(s).substr(0, byte)));
}

Value str_method(Interp& in, const std::string& self, const std::string& m, CallArgs& args) {
  ArgReader r(args, "str." + m + "()");
  Value out;
  in.budget.step(1 + self.size() / 64);
  if (m == "strip" || m == "lstrip" || m == "rstrip") {
    const auto chars = opt_str_arg(r.get(0, "chars", Value::none()), "str." + m + "()");
    out = Value::string(py::strip(self, m != "rstrip", m != "lstrip", chars));
  } else if (m == "startswith" || m == "endswith") {
    const Value p = r.get(0, "prefix", Value());
    std::vector<Value> options = p.is_list() ? p.items() : std::vector<Value>{p};
    bool hit = false;
    for (const Value& o : options) {
      const std::string& x = str_arg(o, "str." + m + "()");
      hit = hit || (m == "startswith" ? self.compare(0, x.size(), x) == 0
                                      : (self.size() >= x.size() && self.compare(self.size() - x.size(), x.size(), x) == 0));
    }
    out = Value::boolean(hit);
  } else if (m == "split" || m == "rsplit") {
    const auto sep = opt_str_arg(r.get(0, "sep", Value::none()), "str." + m + "()");
    const int64_t maxsplit = int_arg(r.get(1, "maxsplit", Value::integer(-1)), "str." + m + "()");
    out = str_list(in, m == "split" ? py::split(self, sep, maxsplit) : py::rsplit(self, sep, maxsplit));
  } else if (m == "splitlines") {
    out = str_list(in, py::splitlines(self, r.get(0, "keepends", Value::boolean(false)).truthy()));
  } else if (m == "replace") {
    const std::string& a = str_arg(r.get(0, "old", Value()), "str.replace()");
    const std::string& b = str_arg(r.get(1, "new", Value()), "str.replace()");
    const int64_t count = int_arg(r.get(2, "count", Value::integer(-1)), "str.replace()");
    std::string res = py::replace(self, a, b, count);
    in.budget.write(res.size(), res.size());
    out = Value::string(std::move(res));
  } else if (m == "upper") {
    out = Value::string(py::upper(self));
  } else if (m == "lower") {
    out = Value::string(py::lower(self));
  } else if (m == "title") {
    out = Value::string(py::title(self));
  } else if (m == "capitalize") {
    out = Value::string(py::capitalize(self));
  } else if (m == "format") {
    std::string res;
    size_t auto_index = 0;
    for (size_t i = 0; i < self.size(); ++i) {
      const char c = self[i];
      if (c == '}') {
        if (i + 1 < self.size() && self[i + 1] == '}') ++i;
        else fault("single '}' encountered in format string");
        res += '}';
      } else if (c != '{') {
        res += c;
      } else if (i + 1 < self.size() && self[i + 1] == '{') {
        res += '{';
        ++i;
      } else {
        const size_t close = self.find('}', i);
        if (close == std::string::npos) fault("single '{' encountered in format string");
        std::string field = self.substr(i + 1, close - i - 1);
        i = close;
        bool use_repr = false;
        if (const size_t colon = field.find(':'); colon != std::string::npos) {
          if (colon + 1 != field.size()) fault("format specs are not supported in str.format()");
          field.resize(colon);
        }
        if (field.size() >= 2 && field[field.size() - 2] == '!') {
          use_repr = field.back() == 'r';
          field.resize(field.size() - 2);
        }
        const Value* v = nullptr;
        if (field.empty()) {
          v = auto_index < args.pos.size() ? &args.pos[auto_index] : nullptr;
          ++auto_index;
        } else if (std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
          const size_t k = std::stoul(field.substr(0, 9));
          v = k < args.pos.size() ? &args.pos[k] : nullptr;
        } else {
          for (const auto& [k, x] : args.kw) {
            if (k == field) v = &x;
          }
        }
        if (!v) fault("str.format(): no argument for field '{" + field + "}'");
        res += use_repr ? to_repr(*v, in.budget) : to_str(*v, in.budget);
        in.budget.size(res.size());
      }
    }
    return Value::string(std::move(res));
  } else if (m == "join") {
    const std::vector<Value> items = in.iterate(r.get(0, "iterable", Value()));
    std::string res;
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) res += self;
      res += str_arg(items[i], "str.join()");
      in.budget.write(res.size(), self.size() + items[i].str().size());
    }
    out = Value::string(std::move(res));
  } else if (m == "find" || m == "rfind" || m == "index" || m == "count") {
    const std::string& sub = str_arg(r.get(0, "sub", Value()), "str." + m + "()");
    if (m == "count") {
      int64_t n = 0;
      if (sub.empty()) {
        n = static_cast<int64_t>(py::length(self)) + 1;
      } else {
        for (size_t at = self.find(sub); at != std::string::npos; at = self.find(sub, at + sub.size())) ++n;
      }
      out = Value::integer(n);
    } else {
      const size_t at = m == "rfind" ? self.rfind(sub) : self.find(sub);
      if (at == std::string::npos && m == "index") fault("substring not found");
      out = Value::integer(at == std::string::npos ? -1 : cp_index(self, at));
    }
  } else if (m == "isdigit" || m == "isalpha" || m == "isalnum" || m == "isspace" || m == "islower" || m == "isupper") {
    bool ok = !self.empty();
    bool cased = false;
    for (char c : self) {
      const bool digit = c >= '0' && c <= '9', lo = c >= 'a' && c <= 'z', up = c >= 'A' && c <= 'Z';
      if (m == "isdigit") ok = ok && digit;
      else if (m == "isalpha") ok = ok && (lo || up);
      else if (m == "isalnum") ok = ok && (lo || up || digit);
      else if (m == "isspace") ok = ok && py::is_space(static_cast<unsigned char>(c));
      else if (m == "islower") ok = ok && !up, cased = cased || lo;
      else ok = ok && !lo, cased = cased || up;
    }
    out = Value::boolean(ok && (m != "islower" && m != "isupper" ? true : cased));
  } else {
    fault("'str' object has no method '" + m + "'");
  }
  r.done();
  if (out.is_string()) in.budget.write(out.str().size(), out.str().size());
  return out;
}

Value dict_method(Interp& in, const DictData& d, const std::string& m, CallArgs& args) {
  ArgReader r(args, "dict." + m + "()");
  if (m != "get") in.budget.elements(3 * d.size());
  Value out;
  if (m == "items") {
    std::vector<Value> items;
    for (const auto& [k, v] : d.entries) items.push_back(Value::list({Value::string(k), v}, true));
    out = Value::list(std::move(items));
  } else if (m == "keys") {
    std::vector<Value> items;
    for (const auto& e : d.entries) items.push_back(Value::string(e.first));
    out = Value::list(std::move(items));
  } else if (m == "values") {
    std::vector<Value> items;
    for (const auto& e : d.entries) items.push_back(e.second);
    out = Value::list(std::move(items));
  } else if (m == "get") {
    const Value key = r.get(0, "key", Value());
    const Value fallback = r.get(1, "default", Value::none());
    const Value* v = key.is_string() ? d.find(key.str()) : nullptr;
    out = v ? *v : fallback;
  }
  r.done();
  return out;
}

Value list_method(Interp& in, const Value& self, const std::string& m, CallArgs& args) {
  ArgReader r(args, "list." + m + "()");
  const Value x = r.get(0, "value", Value());
  r.done();
  int64_t n = 0;
  const auto& items = self.items();
  for (size_t i = 0; i < items.size(); ++i) {
    if (!equal(items[i], x, in.budget)) continue;
    if (m == "index") return Value::integer(static_cast<int64_t>(i));
    ++n;
  }
  if (m == "index") fault(to_repr(x, in.budget) + " is not in list");
  return Value::integer(n);
}

struct Method : Callable {
  Value self;
  std::string method;
  Method(Value s, std::string m) : self(std::move(s)), method(std::move(m)) {}
  Value call(Interp& in, CallArgs& args) const override {
    if (self.kind() == Kind::Loop) {  // loop.cycle(a, b, ...)
      if (args.pos.empty()) fault("no items for cycling given");
      return args.pos[self.loop_info().index0 % args.pos.size()];
    }
    if (self.is_string()) return str_method(in, self.str(), method, args);
    if (self.is_dict()) return dict_method(in, self.dict(), method, args);
    return list_method(in, self, method, args);
  }
  std::string name() const override { return type_name(self) + "." + method; }
};

bool is_str_method(const std::string& m) {
  static constexpr std::string_view kNames[] = {
      "strip",  "lstrip", "rstrip", "startswith", "endswith", "split",   "rsplit",  "splitlines", "replace",
      "upper",  "lower",  "title",  "capitalize", "format",   "join",    "find",    "rfind",      "index",
      "count",  "isdigit", "isalpha", "isalnum",  "isspace",  "islower", "isupper"};
  return std::find(std::begin(kNames), std::end(kNames), m) != std::end(kNames);
}

bool is_dict_method(const std::string& m) { return m == "items" || m == "keys" || m == "values" || m == "get"; }

Value bound(const Value& self, const std::string& m) { return Value::callable(std::make_shared<Method>(self, m)); }

}  // namespace

Value get_attr(Interp& in, const Value& obj, const std::string& name) {
  in.budget.step();
  switch (obj.kind()) {
    case Kind::Dict: {
      // Python's getattr comes first: d.items is the method even if "items" is a key.
      if (is_dict_method(name)) return bound(obj, name);
      const Value* v = obj.dict().find(name);
      return v ? *v : Value::undefined(name);
    }
    case Kind::Namespace: {
      const Value* v = obj.ns_data().find(name);
      return v ? *v : Value::undefined(name);
    }
    case Kind::String: return is_str_method(name) ? bound(obj, name) : Value::undefined(name);
    case Kind::List: return (name == "count" || name == "index") ? bound(obj, name) : Value::undefined(name);
    case Kind::Loop: {
      const LoopInfo& l = obj.loop_info();
      const auto n = static_cast<int64_t>(l.items->size()), i = static_cast<int64_t>(l.index0);
      if (name == "index") return Value::integer(i + 1);
      if (name == "index0") return Value::integer(i);
      if (name == "revindex") return Value::integer(n - i);
      if (name == "revindex0") return Value::integer(n - i - 1);
      if (name == "first") return Value::boolean(i == 0);
      if (name == "last") return Value::boolean(i + 1 == n);
      if (name == "length") return Value::integer(n);
      if (name == "depth") return Value::integer(1);
      if (name == "depth0") return Value::integer(0);
      if (name == "previtem") return i > 0 ? (*l.items)[l.index0 - 1] : Value::undefined(name);
      if (name == "nextitem") return i + 1 < n ? (*l.items)[l.index0 + 1] : Value::undefined(name);
      if (name == "cycle") return bound(obj, name);
      return Value::undefined(name);
    }
    default: return Value::undefined(name);
  }
}

Value get_item(Interp& in, const Value& obj, const Value& key) {
  in.budget.step();
  const bool int_key = key.kind() == Kind::Int || key.kind() == Kind::Bool;
  switch (obj.kind()) {
    case Kind::List: {
      if (!int_key) break;
      const auto n = static_cast<int64_t>(obj.items().size());
      int64_t i = key.as_int();
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undefined();
      return obj.items()[static_cast<size_t>(i)];
    }
    case Kind::String: {
      if (!int_key) break;
      const std::string& s = obj.str();
      const std::vector<size_t> off = py::offsets(s);
      const auto n = static_cast<int64_t>(off.size() - 1);
      int64_t i = key.as_int();
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undefined();
      const auto k = static_cast<size_t>(i);
      return Value::string(s.substr(off[k], off[k + 1] - off[k]));
    }
    case Kind::Dict: {
      if (!key.is_string()) return Value::undefined();
      if (const Value* v = obj.dict().find(key.str())) return *v;
      break;
    }
    case Kind::Namespace: {
      if (!key.is_string()) return Value::undefined();
      if (const Value* v = obj.ns_data().find(key.str())) return *v;
      return Value::undefined(key.str());
    }
    default: break;
  }
  // Jinja's getitem falls back to getattr for string keys.
  if (key.is_string()) return get_attr(in, obj, key.str());
  return Value::undefined();
}

std::vector<size_t> slice_indices(size_t n, const Value& start, const Value& stop, const Value& step) {
  auto as_opt = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (v.kind() != Kind::Int && v.kind() != Kind::Bool) fault("slice indices must be integers or None");
    return v.as_int();
  };
  const int64_t st = as_opt(step).value_or(1);
  if (st == 0) fault("slice step cannot be zero");
  const auto len = static_cast<int64_t>(n);
  const int64_t lower = st > 0 ? 0 : -1, upper = st > 0 ? len : len - 1;
  auto clamp = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v) return fallback;
    int64_t x = *v;
    if (x < 0) x += len;
    return std::clamp(x, lower, upper);
  };
  const int64_t a = clamp(as_opt(start), st > 0 ? lower : upper);
  const int64_t b = clamp(as_opt(stop), st > 0 ? upper : lower);
  std::vector<size_t> idx;
  for (int64_t i = a; st > 0 ? i < b : i > b; i += st) idx.push_back(static_cast<size_t>(i));
  return idx;
}

// ---- printf-style formatting ----

std::string percent_format(Interp& in, const std::string& fmt, const Value& args) {
  std::vector<Value> pos;
  const DictData* named = args.is_dict() ? &args.dict() : nullptr;
  if (args.is_tuple()) pos = args.items();
  else if (!named && !args.is_undefined()) pos = {args};
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    const size_t before = out.size();
    if (++i >= fmt.size()) fault("incomplete format");
    const Value* arg = nullptr;
    if (fmt[i] == '(') {
      const size_t close = fmt.find(')', i);
      if (close == std::string::npos || !named) fault("format requires a mapping");
      arg = named->find(fmt.substr(i + 1, close - i - 1));
      if (!arg) fault("format: key '" + fmt.substr(i + 1, close - i - 1) + "' missing");
      i = close + 1;
    }
    std::string spec = "%";
    while (i < fmt.size() && std::string_view("-+ 0#").find(fmt[i]) != std::string_view::npos) spec += fmt[i++];
    while (i < fmt.size() && ((fmt[i] >= '0' && fmt[i] <= '9') || fmt[i] == '.')) spec += fmt[i++];
    if (i >= fmt.size()) fault("incomplete format");
    const char conv = fmt[i];
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (!arg) {
      if (next >= pos.size()) fault("not enough arguments for format string");
      arg = &pos[next++];
    }
    if (spec.size() > 12) fault("format spec too long");
    char buf[512];
    switch (conv) {
      case 's': case 'r': {
        const std::string s = conv == 's' ? to_str(*arg, in.budget) : to_repr(*arg, in.budget);
        if (spec == "%") {
          out += s;
        } else {
          std::snprintf(buf, sizeof buf, (spec + "s").c_str(), s.substr(0, 256).c_str());
          out += buf;
        }
        break;
      }
      case 'd': case 'i': case 'x': case 'X': case 'o': case 'c': {
        if (!arg->is_number()) fault(std::string("%") + conv + " format: a number is required, not " + type_name(*arg));
        if (conv == 'c') {
          py::append_utf8(out, static_cast<uint32_t>(arg->as_int()));
          break;
        }
        const std::string f = spec + "ll" + (conv == 'i' ? 'd' : conv);
        std::snprintf(buf, sizeof buf, f.c_str(), static_cast<long long>(arg->as_int()));
        out += buf;
        break;
      }
      case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': {
        if (!arg->is_number()) fault(std::string("%") + conv + " format: a real number is required, not " + type_name(*arg));
        std::snprintf(buf, sizeof buf, (spec + conv).c_str(), arg->as_double());
        out += buf;
        break;
      }
      default: fault(std::string("unsupported format character '") + conv + "'");
    }
    in.budget.write(out.size(), out.size() - before);
  }
  if (!named && next < pos.size()) fault("not all arguments converted during string formatting");
  return out;
}

// ---- globals ----

namespace {

struct Global : Callable {
  std::string fn;
  explicit Global(std::string n) : fn(std::move(n)) {}
  std::string name() const override { return fn; }

  Value call(Interp& in, CallArgs& args) const override {
    if (fn == "range") {
      ArgReader r(args, "range()");
      const std::vector<Value> a = r.rest(0);
      r.done();
      if (a.empty() || a.size() > 3) fault("range() takes 1 to 3 arguments");
      int64_t start = 0, stop = 0, step = 1;
      if (a.size() == 1) stop = int_arg(a[0], "range()");
      else start = int_arg(a[0], "range()"), stop = int_arg(a[1], "range()");
      if (a.size() == 3) step = int_arg(a[2], "range()");
      if (step == 0) fault("range() arg 3 must not be zero");
      // Count first and charge for it, so that range(10**12) fails before allocating.
      const __int128 span = step > 0 ? static_cast<__int128>(stop) - start : static_cast<__int128>(start) - stop;
      const __int128 mag = step > 0 ? step : -static_cast<__int128>(step);
      const __int128 count = span <= 0 ? 0 : (span + mag - 1) / mag;
      in.budget.elements(count > static_cast<__int128>(UINT32_MAX) ? UINT64_MAX / 64 : static_cast<size_t>(count));
      std::vector<Value> items;
      items.reserve(static_cast<size_t>(count));
      int64_t i = start;
      while (step > 0 ? i < stop : i > stop) {
        items.push_back(Value::integer(i));
        if (__builtin_add_overflow(i, step, &i)) break;
      }
      return Value::list(std::move(items));
    }
    if (fn == "namespace" || fn == "dict") {
      DictData d;
      for (const Value& p : args.pos) {
        if (!p.is_dict()) fault(fn + "() positional argument must be a dict");
        for (const auto& [k, v] : p.dict().entries) d.set(k, v);
      }
      for (const auto& [k, v] : args.kw) d.set(k, v);
      if (fn == "dict") return Value::dict(std::move(d));
      in.namespaces.push_back(Value::ns(std::move(d)));
      return in.namespaces.back();
    }
    if (fn == "raise_exception") {
      ArgReader r(args, "raise_exception()");
      const Value msg = r.get(0, "message", Value::string("raise_exception() called"));
      fault(to_str(msg, in.budget));
    }
    // strftime_now
    ArgReader r(args, "strftime_now()");
    const std::string& format = str_arg(r.get(0, "format", Value()), "strftime_now()");
    r.done();
    if (format.size() > 256) fault("strftime_now(): format too long");
    std::tm tm{};
    if (in.options.now) {
      tm = *in.options.now;
    } else {
      const std::time_t t = std::time(nullptr);
      localtime_r(&t, &tm);
    }
    std::string buf(format.size() * 64 + 64, '\0');
    const size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &tm);
    buf.resize(n);
    return Value::string(std::move(buf));
  }
};

}  // namespace

const Value* find_global(std::string_view name) {
  static const std::vector<std::pair<std::string, Value>> kGlobals = [] {
    std::vector<std::pair<std::string, Value>> g;
    for (const char* n : {"range", "namespace", "dict", "raise_exception", "strftime_now"}) {
      g.emplace_back(n, Value::callable(std::make_shared<Global>(n)));
    }
    return g;
  }();
  for (const auto& [k, v] : kGlobals) {
    if (k == name) return &v;
  }
  return nullptr;
}

}  // namespace pl::chat::jinja
