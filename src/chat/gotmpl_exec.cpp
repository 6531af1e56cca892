// Execution of Go templates over JSON data, the GoTemplate API, and the two
// tree rewrites Ollama applies to legacy (prompt/response) templates.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "chat/gotmpl.h"
#include "chat/gotmpl_ast.h"
#include "chat/gotmpl_format.h"
#include "chat/jinja_value.h"  // Budget and Fault
#include "chat/pystr.h"
#include "core/error.h"

namespace pl::chat {
namespace go {

using Json = nlohmann::ordered_json;
using jinja::fault;

namespace {

constexpr std::string_view kFunctions[] = {"and", "or",  "not",   "eq",    "ne",     "lt",      "le",  "gt",
                                           "ge",  "len", "index", "slice", "print",  "printf",  "println", "json"};

// A value: a pointer into the data (which outlives the render) or into a
// value computed here (kept alive by `own`). No pointer: Go's "no value".
struct Val {
  const Json* ref = nullptr;
  std::shared_ptr<const Json> own;

  static Val at(const Json& j, std::shared_ptr<const Json> owner = nullptr) {
    Val v;
    v.ref = &j;
    v.own = std::move(owner);
    return v;
  }
  static Val of(Json j) {
    Val v;
    v.own = std::make_shared<const Json>(std::move(j));
    v.ref = v.own.get();
    return v;
  }
  bool nil() const { return !ref || ref->is_null(); }
  bool missing() const { return !ref; }
};

std::string type_of(const Val& v) {
  if (v.missing()) return "<nil>";
  switch (v.ref->type()) {
    case Json::value_t::null: return "<nil>";
    case Json::value_t::boolean: return "bool";
    case Json::value_t::string: return "string";
    case Json::value_t::number_float: return "float64";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "int";
    case Json::value_t::array: return "[]interface {}";
    case Json::value_t::object: return "map[string]interface {}";
    default: return "?";
  }
}

bool truth(const Val& v) {
  if (v.nil()) return false;
  const Json& j = *v.ref;
  if (j.is_boolean()) return j.get<bool>();
  if (j.is_number_float()) return j.get<double>() != 0;
  if (j.is_number()) return j.get<int64_t>() != 0;
  if (j.is_string()) return !j.get_ref<const std::string&>().empty();
  return !j.empty();
}

// How an action prints a value: Go's text/template printValue, with objects
// and arrays as JSON (what Ollama's types print as).
std::string text_of(const Val& v, jinja::Budget& budget, bool for_fmt) {
  if (v.nil()) return for_fmt ? "<nil>" : "<no value>";
  const Json& j = *v.ref;
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number_float()) return go_float(j.get<double>());
  std::string out;
  json_value(out, j, budget);
  return out;
}

// Keys match exactly, else ignoring case and underscores (Go field names on JSON keys).
std::string fold(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != '_') out += static_cast<char>((c >= 'A' && c <= 'Z') ? c + 32 : c);
  }
  return out;
}

class Exec {
 public:
  Exec(const RenderLimits& limits, const Json& data)
      : budget(limits.max_steps, limits.max_output_bytes, limits.max_memory_bytes) {
    vars_.emplace_back("$", Val::at(data));
  }

  enum class Flow { Normal, Break, Continue };

  Flow list(const std::vector<Node>& nodes, const Val& dot) {
    for (const Node& n : nodes) {
      budget.step();
      pos = n.pos;
      switch (n.kind) {
        case Node::Kind::Text: emit(n.text); break;
        case Node::Kind::Action: {
          const Val v = pipe(n.pipe, dot, true);
          if (n.pipe.decl.empty()) emit(text_of(v, budget, false));
          break;
        }
        case Node::Kind::If:
        case Node::Kind::With: {
          const size_t mark = vars_.size();
          const Val v = pipe(n.pipe, dot, true);
          pos = n.pos;
          Flow f;
          if (truth(v)) f = list(n.list, n.kind == Node::Kind::With ? v : dot);
          else f = list(n.else_list, dot);
          vars_.resize(mark);
          if (f != Flow::Normal) return f;
          break;
        }
        case Node::Kind::Range: {
          const Flow f = range(n, dot);
          if (f != Flow::Normal) return f;
          break;
        }
        case Node::Kind::Break: return Flow::Break;
        case Node::Kind::Continue: return Flow::Continue;
      }
    }
    return Flow::Normal;
  }

  jinja::Budget budget;
  Pos pos;
  std::string out;

 private:
  std::vector<std::pair<std::string, Val>> vars_;

  void emit(std::string_view s) {
    budget.write(out.size() + s.size(), s.size());
    out += s;
  }

  Val lookup(const std::string& name) const {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
      if (it->first == name) return it->second;
    }
    fault("undefined variable " + name);
  }

  Flow range(const Node& n, const Val& dot) {
    const size_t mark = vars_.size();
    const Val coll = pipe(n.pipe, dot, false);
    pos = n.pos;
    const auto& decl = n.pipe.decl;
    size_t count = 0;
    auto iteration = [&](const Val& key, const Val& elem) {
      budget.step();
      ++count;
      vars_.resize(mark);
      if (decl.size() == 1) vars_.emplace_back(decl[0], elem);
      if (decl.size() == 2) vars_.emplace_back(decl[0], key), vars_.emplace_back(decl[1], elem);
      return list(n.list, elem);
    };
    Flow result = Flow::Normal;
    if (!coll.nil()) {
      const Json& j = *coll.ref;
      if (j.is_array()) {
        for (size_t i = 0; i < j.size(); ++i) {
          if (iteration(Val::of(static_cast<int64_t>(i)), Val::at(j[i], coll.own)) == Flow::Break) break;
        }
      } else if (j.is_object()) {
        std::vector<const std::string*> keys;  // Go ranges over a map in key order
        for (const auto& [k, x] : j.items()) keys.push_back(&k);
        std::sort(keys.begin(), keys.end(), [](auto* a, auto* b) { return *a < *b; });
        for (const std::string* k : keys) {
          if (iteration(Val::of(*k), Val::at(j.at(*k), coll.own)) == Flow::Break) break;
        }
      } else if (j.is_number_integer() || j.is_number_unsigned()) {
        const int64_t n_iter = j.get<int64_t>();
        for (int64_t i = 0; i < n_iter; ++i) {
          const Val iv = Val::of(i);
          if (iteration(iv, iv) == Flow::Break) break;
        }
      } else {
        fault("range can't iterate over " + text_of(coll, budget, true));
      }
    }
    vars_.resize(mark);
    if (count == 0) result = list(n.else_list, dot);
    vars_.resize(mark);
    return result;
  }

  Val pipe(const Pipe& p, const Val& dot, bool apply_decl) {
    Val v;
    bool have = false;
    for (const Cmd& c : p.cmds) {
      v = command(c, dot, have ? &v : nullptr);
      have = true;
    }
    if (apply_decl && !p.decl.empty()) {
      if (p.assign) {
        for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
          if (it->first == p.decl[0]) {
            it->second = v;
            break;
          }
        }
      } else {
        vars_.emplace_back(p.decl[0], v);
      }
    }
    return v;
  }

  Val command(const Cmd& c, const Val& dot, const Val* final) {
    budget.step();
    const Arg& first = c.args[0];
    if (first.kind == Arg::Kind::Func) return call(first.name, c, dot, final);
    if (c.args.size() > 1 || final) {
      pos = c.pos;
      fault("can't give argument to non-function " + describe(first));
    }
    return arg(first, dot);
  }

  static std::string describe(const Arg& a) {
    switch (a.kind) {
      case Arg::Kind::Dot: return ".";
      case Arg::Kind::Field: return "." + a.fields[0];
      case Arg::Kind::Var: return a.name;
      default: return "a value";
    }
  }

  Val arg(const Arg& a, const Val& dot) {
    Val base;
    switch (a.kind) {
      case Arg::Kind::Dot:
      case Arg::Kind::Field: base = dot; break;
      case Arg::Kind::Var: base = lookup(a.name); break;
      case Arg::Kind::Literal: return Val::of(a.literal);
      case Arg::Kind::Nil: return Val::of(nullptr);
      case Arg::Kind::Pipe: base = pipe(*a.pipe, dot, false); break;
      case Arg::Kind::Func: {
        Cmd c;
        c.pos = a.pos;
        c.args = {a};
        return call(a.name, c, dot, nullptr);
      }
    }
    for (const std::string& f : a.fields) {
      pos = a.pos;
      base = field(base, f);
    }
    return base;
  }

  Val field(const Val& v, const std::string& name) {
    budget.step();
    if (v.nil()) return Val();
    const Json& j = *v.ref;
    if (!j.is_object()) fault("can't evaluate field " + name + " in type " + type_of(v));
    if (const auto it = j.find(name); it != j.end()) return Val::at(*it, v.own);
    const std::string want = fold(name);
    for (const auto& [k, x] : j.items()) {
      if (fold(k) == want) return Val::at(x, v.own);
    }
    return Val();
  }

  Val call(const std::string& fn, const Cmd& c, const Val& dot, const Val* final);
  std::string sprintf(const std::string& format, const std::vector<Val>& args);
};

int64_t int_of(const Val& v, const char* what) {
  if (v.nil() || !(v.ref->is_number_integer() || v.ref->is_number_unsigned())) {
    fault(std::string(what) + ": cannot index slice/array with type " + type_of(v));
  }
  return v.ref->get<int64_t>();
}

// Go's eq on basic values; false for values of different kinds.
bool equal(const Val& a, const Val& b) {
  if (a.nil() || b.nil()) return a.nil() && b.nil();
  const Json& x = *a.ref;
  const Json& y = *b.ref;
  if (x.is_structured() || y.is_structured()) fault("error calling eq: non-comparable type " + type_of(x.is_structured() ? a : b));
  if (x.is_number() && y.is_number()) {
    if (x.is_number_float() || y.is_number_float()) return x.get<double>() == y.get<double>();
    return x.get<int64_t>() == y.get<int64_t>();
  }
  return x == y;
}

int order(const Val& a, const Val& b, const std::string& fn) {
  if (!a.nil() && !b.nil()) {
    const Json& x = *a.ref;
    const Json& y = *b.ref;
    if (x.is_number() && y.is_number()) {
      const double p = x.get<double>(), q = y.get<double>();
      return p < q ? -1 : (p > q ? 1 : 0);
    }
    if (x.is_string() && y.is_string()) {
      const int r = x.get_ref<const std::string&>().compare(y.get_ref<const std::string&>());
      return r < 0 ? -1 : (r > 0 ? 1 : 0);
    }
  }
  fault("error calling " + fn + ": incompatible types for comparison");
}

Val Exec::call(const std::string& fn, const Cmd& c, const Val& dot, const Val* final) {
  pos = c.pos;
  const size_t n_args = c.args.size() - 1 + (final ? 1 : 0);
  auto arg_at = [&](size_t i) { return i + 1 < c.args.size() ? arg(c.args[i + 1], dot) : *final; };
  if (fn == "and" || fn == "or") {
    if (n_args == 0) fault("wrong number of args for " + fn + ": want at least 1 got 0");
    Val v;
    for (size_t i = 0; i < n_args; ++i) {
      v = arg_at(i);  // evaluated lazily: Go's and/or stop at the first deciding argument
      if (truth(v) == (fn == "or")) return v;
    }
    return v;
  }
  std::vector<Val> a;
  for (size_t i = 0; i < n_args; ++i) a.push_back(arg_at(i));
  pos = c.pos;
  auto want = [&](size_t lo, size_t hi) {
    if (a.size() < lo || a.size() > hi) {
      fault("wrong number of args for " + fn + ": want " + std::to_string(lo) + " got " + std::to_string(a.size()));
    }
  };
  if (fn == "not") {
    want(1, 1);
    return Val::of(!truth(a[0]));
  }
  if (fn == "eq") {
    if (a.size() < 2) fault("missing argument for comparison");
    for (size_t i = 1; i < a.size(); ++i) {
      if (equal(a[0], a[i])) return Val::of(true);
    }
    return Val::of(false);
  }
  if (fn == "ne") {
    want(2, 2);
    return Val::of(!equal(a[0], a[1]));
  }
  if (fn == "lt" || fn == "le" || fn == "gt" || fn == "ge") {
    want(2, 2);
    const int o = order(a[0], a[1], fn);
    return Val::of(fn == "lt" ? o < 0 : fn == "le" ? o <= 0 : fn == "gt" ? o > 0 : o >= 0);
  }
  if (fn == "len") {
    want(1, 1);
    if (a[0].nil()) fault("error calling len: len of nil pointer");
    const Json& j = *a[0].ref;
    if (j.is_string()) return Val::of(static_cast<int64_t>(j.get_ref<const std::string&>().size()));
    if (j.is_structured()) return Val::of(static_cast<int64_t>(j.size()));
    fault("error calling len: len of type " + type_of(a[0]));
  }
  if (fn == "index") {
    want(1, 64);
    Val v = a[0];
    for (size_t i = 1; i < a.size(); ++i) {
      if (v.nil()) fault("error calling index: index of untyped nil");
      const Json& j = *v.ref;
      if (j.is_array() || j.is_string()) {
        const int64_t k = int_of(a[i], "error calling index");
        const auto n = static_cast<int64_t>(j.is_array() ? j.size() : j.get_ref<const std::string&>().size());
        if (k < 0 || k >= n) fault("error calling index: index out of range: " + std::to_string(k));
        if (j.is_string()) return Val::of(static_cast<int64_t>(static_cast<unsigned char>(j.get_ref<const std::string&>()[static_cast<size_t>(k)])));
        v = Val::at(j[static_cast<size_t>(k)], v.own);
      } else if (j.is_object()) {
        if (a[i].nil() || !a[i].ref->is_string()) fault("error calling index: value has type " + type_of(a[i]) + "; should be string");
        const auto it = j.find(a[i].ref->get<std::string>());
        v = it == j.end() ? Val() : Val::at(*it, v.own);
      } else {
        fault("error calling index: can't index item of type " + type_of(v));
      }
    }
    return v;
  }
  if (fn == "slice") {
    want(1, 4);
    if (a[0].nil()) fault("error calling slice: slice of untyped nil");
    const Json& j = *a[0].ref;
    if (!j.is_array() && !j.is_string()) fault("error calling slice: can't slice item of type " + type_of(a[0]));
    if (j.is_string() && a.size() == 4) fault("error calling slice: cannot 3-index slice a string");
    const auto n = static_cast<int64_t>(j.is_array() ? j.size() : j.get_ref<const std::string&>().size());
    int64_t lo = 0, hi = n;
    if (a.size() > 1) lo = int_of(a[1], "error calling slice");
    if (a.size() > 2) hi = int_of(a[2], "error calling slice");
    if (a.size() > 3 && (int_of(a[3], "error calling slice") < hi || int_of(a[3], "error calling slice") > n)) {
      fault("error calling slice: index out of range");
    }
    if (lo < 0 || hi < lo || hi > n) fault("error calling slice: index out of range: " + std::to_string(lo < 0 ? lo : hi));
    if (j.is_string()) {
      budget.write(static_cast<size_t>(hi - lo), static_cast<size_t>(hi - lo));
      return Val::of(j.get_ref<const std::string&>().substr(static_cast<size_t>(lo), static_cast<size_t>(hi - lo)));
    }
    budget.elements(static_cast<size_t>(hi - lo));
    Json out = Json::array();
    for (int64_t i = lo; i < hi; ++i) out.push_back(j[static_cast<size_t>(i)]);
    return Val::of(std::move(out));
  }
  std::string s;
  if (fn == "json") {
    want(1, 1);
    if (a[0].missing()) s = "null";
    else json_value(s, *a[0].ref, budget);
  } else if (fn == "print" || fn == "println") {
    for (size_t i = 0; i < a.size(); ++i) {
      const bool str_i = !a[i].nil() && a[i].ref->is_string();
      const bool str_prev = i > 0 && !a[i - 1].nil() && a[i - 1].ref->is_string();
      if (i > 0 && (fn == "println" || (!str_i && !str_prev))) s += ' ';
      s += text_of(a[i], budget, true);
      budget.size(s.size());
    }
    if (fn == "println") s += '\n';
  } else if (fn == "printf") {
    if (a.empty() || a[0].nil() || !a[0].ref->is_string()) fault("printf: the format must be a string");
    s = sprintf(a[0].ref->get<std::string>(), std::vector<Val>(a.begin() + 1, a.end()));
  } else {
    fault("function \"" + fn + "\" not defined");
  }
  budget.write(s.size(), s.size());
  return Val::of(std::move(s));
}

// fmt.Sprintf for the verbs templates use: %v %s %d %q %t %f %e %g %x %%.
std::string Exec::sprintf(const std::string& format, const std::vector<Val>& args) {
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    std::string spec = "%";
    while (++i < format.size() && std::string_view("+-# 0123456789.").find(format[i]) != std::string_view::npos) {
      spec += format[i];
    }
    if (i >= format.size()) {
      out += "%!(NOVERB)";
      break;
    }
    const char verb = format[i];
    if (verb == '%') {
      out += '%';
      continue;
    }
    if (spec.size() > 8) fault("printf: format spec too long");
    if (next >= args.size()) {
      out += std::string("%!") + verb + "(MISSING)";
      continue;
    }
    const Val& v = args[next++];
    const Json* j = v.nil() ? nullptr : v.ref;
    char buf[512];
    auto bad = [&] { out += std::string("%!") + verb + "(" + type_of(v) + "=" + text_of(v, budget, true) + ")"; };
    switch (verb) {
      case 'v': out += text_of(v, budget, true); break;
      case 's':
        if (j && !j->is_string() && !j->is_structured()) bad();
        else out += text_of(v, budget, true);
        break;
      case 'q': {
        if (!j || !j->is_string()) {
          bad();
          break;
        }
        std::string q;
        json_string(q, j->get<std::string>());  // close to strconv.Quote for the text prompts carry
        out += q;
        break;
      }
      case 't':
        if (!j || !j->is_boolean()) bad();
        else out += j->get<bool>() ? "true" : "false";
        break;
      case 'd': case 'x': case 'X': case 'o': case 'b':
        if (!j || !(j->is_number_integer() || j->is_number_unsigned())) {
          bad();
        } else if (verb == 'b') {
          const auto u = static_cast<uint64_t>(j->get<int64_t>());
          std::string bits;
          for (uint64_t k = u; k; k >>= 1) bits.insert(bits.begin(), static_cast<char>('0' + (k & 1)));
          out += bits.empty() ? "0" : bits;
        } else {
          std::snprintf(buf, sizeof buf, (spec + "ll" + (verb == 'd' ? 'd' : verb)).c_str(), static_cast<long long>(j->get<int64_t>()));
          out += buf;
        }
        break;
      case 'f': case 'e': case 'g': case 'E': case 'G':
        if (!j || !j->is_number()) {
          bad();
        } else {
          std::snprintf(buf, sizeof buf, (spec + verb).c_str(), j->get<double>());
          out += buf;
        }
        break;
      default: out += std::string("%!") + verb + "(" + type_of(v) + "=" + text_of(v, budget, true) + ")";
    }
    budget.size(out.size());
  }
  if (next < args.size()) {
    out += "%!(EXTRA ";
    for (size_t k = next; k < args.size(); ++k) {
      if (k > next) out += ", ";
      out += type_of(args[k]) + "=" + text_of(args[k], budget, true);
    }
    out += ")";
  }
  return out;
}

// ---- Ollama's tree rewrites ----

void collect(const Pipe& p, std::vector<std::string>& names);

void collect(const Arg& a, std::vector<std::string>& names) {
  if (a.kind == Arg::Kind::Var) names.push_back(a.name);
  for (const auto& f : a.fields) names.push_back(f);
  if (a.kind == Arg::Kind::Pipe && a.pipe) collect(*a.pipe, names);
}

void collect(const Pipe& p, std::vector<std::string>& names) {
  for (const auto& c : p.cmds) {
    for (const auto& a : c.args) collect(a, names);
  }
}

void collect(const std::vector<Node>& nodes, std::vector<std::string>& names) {
  for (const Node& n : nodes) {
    if (n.kind == Node::Kind::Text || n.kind == Node::Kind::Break || n.kind == Node::Kind::Continue) continue;
    collect(n.pipe, names);  // as Ollama's Identifiers: commands only, not the declared variables
    collect(n.list, names);
    collect(n.else_list, names);
  }
}

// Ollama's deleteNode: walking in document order (branch bodies, not their
// conditions), everything after the first field reference naming Response is
// dropped; the action holding it stays.
struct Cutter {
  bool cut = false;

  bool arg(Arg& a) {
    if (cut) return false;
    if (a.kind == Arg::Kind::Field && std::find(a.fields.begin(), a.fields.end(), "Response") != a.fields.end()) {
      cut = true;
      return true;
    }
    if (a.kind == Arg::Kind::Pipe && a.pipe) {
      Pipe copy = *a.pipe;
      if (!pipe(copy)) return false;
      a.pipe = std::make_shared<const Pipe>(std::move(copy));
    }
    return true;
  }

  bool pipe(Pipe& p) {
    for (Cmd& c : p.cmds) {
      std::vector<Arg> kept;
      for (Arg& a : c.args) {
        if (arg(a)) kept.push_back(std::move(a));
      }
      if (kept.empty()) return false;
      c.args = std::move(kept);
    }
    return true;
  }

  bool node(Node& n) {
    if (cut) return false;
    switch (n.kind) {
      case Node::Kind::Action: return pipe(n.pipe);
      case Node::Kind::If:
      case Node::Kind::Range:
      case Node::Kind::With:
        list(n.list);
        if (cut) n.else_list.clear();
        else list(n.else_list);
        return true;
      default: return true;
    }
  }

  void list(std::vector<Node>& nodes) {
    std::vector<Node> kept;
    for (Node& n : nodes) {
      if (node(n)) kept.push_back(std::move(n));
    }
    nodes = std::move(kept);
  }
};

}  // namespace

bool is_function(const std::string& name) {
  return std::find(std::begin(kFunctions), std::end(kFunctions), name) != std::end(kFunctions);
}

}  // namespace go

GoTemplate GoTemplate::parse(std::string_view source) {
  GoTemplate t;
  t.tree_ = go::parse(source);
  return t;
}

const std::string& GoTemplate::source() const { return tree_->source; }

std::string GoTemplate::render(const nlohmann::ordered_json& data, const RenderLimits& limits) const {
  go::Exec ex(limits, data);
  try {
    ex.list(tree_->root, go::Val::at(data));
  } catch (const jinja::Fault& e) {
    pl::fail("line {}, column {}: {}", ex.pos.line, ex.pos.col, e.what());
  }
  return std::move(ex.out);
}

std::vector<std::string> GoTemplate::identifiers() const {
  std::vector<std::string> names;
  go::collect(tree_->root, names);
  for (auto& n : names) n = py::lower(n);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

GoTemplate GoTemplate::with_response_appended() const {
  auto tree = std::make_shared<go::Tree>(*tree_);
  go::Node n;
  n.kind = go::Node::Kind::Action;
  go::Cmd c;
  go::Arg a;
  a.kind = go::Arg::Kind::Field;
  a.fields = {"Response"};
  c.args.push_back(std::move(a));
  n.pipe.cmds.push_back(std::move(c));
  tree->root.push_back(std::move(n));
  GoTemplate t;
  t.tree_ = std::move(tree);
  return t;
}

GoTemplate GoTemplate::cut_after_response() const {
  auto tree = std::make_shared<go::Tree>(*tree_);
  go::Cutter cutter;
  cutter.list(tree->root);
  GoTemplate t;
  t.tree_ = std::move(tree);
  return t;
}

}  // namespace pl::chat
