#include "grammar/schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace pl::grammar {

namespace {

using ojson = nlohmann::ordered_json;

constexpr int64_t kMaxIntDigits = 18;
constexpr int64_t kMaxFracDigits = 20;
constexpr int64_t kMaxExpDigits = 2;

// Keywords that change which values are valid but that we cannot enforce:
// refusing them is better than producing output that fails the client's check.
constexpr const char* kUnsupported[] = {
    "pattern",       "patternProperties", "not",           "if",
    "then",          "else",              "contains",      "minContains",
    "maxContains",   "propertyNames",     "dependencies",  "dependentRequired",
    "dependentSchemas", "minProperties",  "maxProperties", "unevaluatedProperties",
    "unevaluatedItems", "$dynamicRef",    "$recursiveRef"};

// Keywords that only describe (or hold definitions): they never make a $ref
// with siblings need merging.
const std::set<std::string>& annotation_keywords() {
  static const std::set<std::string> k = {
      "title", "description", "examples", "default", "$schema", "$id", "$comment", "$defs", "definitions",
      "deprecated", "readOnly", "writeOnly", "contentMediaType", "contentEncoding", "$anchor"};
  return k;
}

class SchemaCompiler {
 public:
  explicit SchemaCompiler(const ojson& root) : root_(root) {}

  Grammar compile_json_object() { return b_.build(object_any().id); }
  Grammar compile_root() { return b_.build(schema(root_, "#").id); }

 private:
  // ---- shared pieces of plain JSON -------------------------------------------------
  Sym opt_space() {
    if (!opt_space_) opt_space_ = b_.opt("space", b_.lit(" "));
    return *opt_space_;
  }
  Seq colon() { return {b_.byte(':'), opt_space()}; }
  Seq comma() { return {b_.byte(','), opt_space()}; }

  Sym digit() { return b_.set(ByteSet::range('0', '9')); }
  Sym hex() {
    ByteSet s = ByteSet::range('0', '9');
    s.add_range('a', 'f');
    s.add_range('A', 'F');
    return b_.set(s);
  }
  Seq hex_n(int n) { return Seq(static_cast<size_t>(n), hex()); }

  // One character of a JSON string (an escape counts as one).
  Sym str_char() {
    if (str_char_) return *str_char_;
    ByteSet plain = ByteSet::range(0x20, 0x7F);
    plain.remove('"');
    plain.remove('\\');
    ByteSet simple_esc;
    for (char c : std::string_view("\"\\/bfnrt")) simple_esc.add(static_cast<uint8_t>(c));
    // \uXXXX without lone surrogates: many parsers (nlohmann, Go) reject or mangle them.
    ByteSet non_d = ByteSet::range('0', '9');
    non_d.add_range('a', 'c');
    non_d.add_range('A', 'C');
    non_d.add_range('e', 'f');
    non_d.add_range('E', 'F');
    ByteSet d;
    d.add('d');
    d.add('D');
    ByteSet high2 = ByteSet::range('8', '9');
    high2.add_range('a', 'b');
    high2.add_range('A', 'B');
    ByteSet low2 = ByteSet::range('c', 'f');
    low2.add_range('C', 'F');
    Seq bmp{b_.set(non_d)};
    bmp += hex_n(3);
    Seq bmp_d{b_.set(d), b_.set(ByteSet::range('0', '7'))};
    bmp_d += hex_n(2);
    Seq pair{b_.set(d), b_.set(high2)};
    pair += hex_n(2);
    pair += b_.lit("\\u");
    pair += Seq{b_.set(d), b_.set(low2)};
    pair += hex_n(2);
    const Sym u_esc = b_.alts("u-escape", {bmp, bmp_d, pair});
    const Sym esc = b_.alts("escape", {{b_.set(simple_esc)}, {b_.byte('u'), u_esc}});
    str_char_ = b_.alts("char", {{b_.set(plain)}, {b_.byte('\\'), esc}, {b_.utf8_multibyte()}});
    return *str_char_;
  }
  Sym string_any() {
    if (!string_any_) {
      Seq s{b_.byte('"'), b_.star("chars", {str_char()}), b_.byte('"')};
      string_any_ = b_.alts("string", {s});
    }
    return *string_any_;
  }
  // -? (0 | [1-9][0-9]{0,17}) (. [0-9]{1,20})? ([eE] [+-]? [0-9]{1,2})?
  // JSON bounds none of these; we do, so that a model cannot loop on digits
  // and every value fits an int64 or a finite double.
  Sym number(bool integer, bool non_negative) {
    std::optional<Sym>& memo = number_[integer][non_negative];
    if (memo) return *memo;
    if (!int_part_) {
      Seq nz{b_.set(ByteSet::range('1', '9'))};
      nz += b_.repeat("int-digits", {digit()}, 0, kMaxIntDigits - 1);
      int_part_ = b_.alts("int", {b_.lit("0"), nz});
    }
    Seq s;
    if (!non_negative) s.push_back(b_.opt("minus", b_.lit("-")));
    s.push_back(*int_part_);
    if (!integer) {
      Seq frac{b_.byte('.')};
      frac += b_.repeat("frac-digits", {digit()}, 1, kMaxFracDigits);
      s.push_back(b_.opt("frac", frac));
      ByteSet e;
      e.add('e');
      e.add('E');
      ByteSet sign;
      sign.add('+');
      sign.add('-');
      Seq exp{b_.set(e), b_.opt("exp-sign", {b_.set(sign)})};
      exp += b_.repeat("exp-digits", {digit()}, 1, kMaxExpDigits);
      s.push_back(b_.opt("exp", exp));
    }
    memo = b_.alts(integer ? "integer" : "number", {s});
    return *memo;
  }
  Sym literal(const std::string& text) { return b_.alts("literal", {b_.lit(text)}); }
  Sym boolean() {
    if (!boolean_) boolean_ = b_.alts("boolean", {b_.lit("true"), b_.lit("false")});
    return *boolean_;
  }
  Sym null() {
    if (!null_) null_ = b_.alts("null", {b_.lit("null")});
    return *null_;
  }
  Sym value_any() {
    if (value_any_) return *value_any_;
    const uint32_t r = b_.new_rule("value");
    value_any_ = GrammarBuilder::ref(r);  // before the alternatives: objects and arrays recurse
    b_.add_alt(r, {object_any()});
    b_.add_alt(r, {array_any()});
    b_.add_alt(r, {string_any()});
    b_.add_alt(r, {number(false, false)});
    b_.add_alt(r, {boolean()});
    b_.add_alt(r, {null()});
    return *value_any_;
  }
  // "{" (members)? "}" with any keys, values of `value`.
  Sym object_of(Sym value, const std::string& name) {
    Seq member{string_any()};
    member += colon();
    member.push_back(value);
    Seq more = comma();
    more += member;
    Seq members = member;
    members.push_back(b_.star(name + "-more", more));
    return b_.alts(name, {{b_.byte('{'), b_.opt(name + "-members", members), b_.byte('}')}});
  }
  Sym object_any() {
    if (object_any_) return *object_any_;
    const uint32_t r = b_.new_rule("object");
    object_any_ = GrammarBuilder::ref(r);
    b_.add_alt(r, {object_of(value_any(), "object-body")});
    return *object_any_;
  }
  Sym array_any() {
    if (array_any_) return *array_any_;
    const uint32_t r = b_.new_rule("array");
    array_any_ = GrammarBuilder::ref(r);
    Seq more = comma();
    more.push_back(value_any());
    Seq items{value_any(), b_.star("array-more", more)};
    b_.add_alt(r, {b_.byte('['), b_.opt("array-items", items), b_.byte(']')});
    return *array_any_;
  }

  // ---- schemas -----------------------------------------------------------------------
  static int64_t count_keyword(const ojson& s, const char* kw, const std::string& path) {
    const ojson& v = s.at(kw);
    if (!v.is_number_integer() && !(v.is_number_float() && v.get<double>() == static_cast<int64_t>(v.get<double>())))
      fail("format: '{}' at {} must be a non-negative integer", kw, path);
    const auto n = v.get<int64_t>();
    if (n < 0) fail("format: '{}' at {} must be a non-negative integer", kw, path);
    return n;
  }

  const ojson& resolve(const std::string& ref, const std::string& path) const {
    if (ref.empty() || ref[0] != '#')
      fail("format: only local $ref ('#', '#/$defs/...') is supported, got '{}' at {}", ref, path);
    if (ref.size() == 1) return root_;
    try {
      return root_.at(ojson::json_pointer(ref.substr(1)));
    } catch (const nlohmann::json::exception&) {
      fail("format: $ref '{}' at {} does not resolve to a schema in the document", ref, path);
    }
  }

  // The schema with $ref (plus siblings) and allOf merged into one object.
  ojson flatten(const ojson& s, const std::string& path, int depth) const {
    if (depth > 32) fail("format: $ref/allOf nesting at {} is too deep (a reference cycle?)", path);
    if (!s.is_object()) return s;
    ojson out = ojson::object();
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (it.key() != "allOf" && it.key() != "$ref") out[it.key()] = it.value();
    }
    if (s.contains("$ref")) {
      if (!s["$ref"].is_string()) fail("format: $ref at {} must be a string", path);
      out = merge(flatten(resolve(s["$ref"].get<std::string>(), path), path, depth + 1), out, path);
    }
    if (s.contains("allOf")) {
      const ojson& all = s["allOf"];
      if (!all.is_array() || all.empty()) fail("format: 'allOf' at {} must be a non-empty array", path);
      for (size_t i = 0; i < all.size(); ++i) {
        out = merge(out, flatten(all[i], fmt::format("{}/allOf/{}", path, i), depth + 1), path);
      }
    }
    return out;
  }

  static std::vector<std::string> types_of(const ojson& s) {
    std::vector<std::string> t;
    if (!s.contains("type")) return t;
    if (s["type"].is_string()) t.push_back(s["type"].get<std::string>());
    if (s["type"].is_array())
      for (const ojson& x : s["type"]) t.push_back(x.is_string() ? x.get<std::string>() : "?");
    return t;
  }

  // allOf semantics for the keywords we support: properties and required are
  // combined, types intersected, anything else taken from `b`.
  ojson merge(const ojson& a, const ojson& b, const std::string& path) const {
    if (a.is_boolean() && a.get<bool>()) return b;
    if (b.is_boolean() && b.get<bool>()) return a;
    if (!a.is_object() || !b.is_object()) fail("format: allOf at {} can only combine schema objects", path);
    ojson out = a;
    for (auto it = b.begin(); it != b.end(); ++it) {
      const std::string& k = it.key();
      if (!out.contains(k)) {
        out[k] = it.value();
      } else if (k == "properties" && out[k].is_object() && it.value().is_object()) {
        for (auto p = it.value().begin(); p != it.value().end(); ++p) {
          if (out[k].contains(p.key())) {
            out[k][p.key()] = ojson{{"allOf", ojson::array({out[k][p.key()], p.value()})}};
          } else {
            out[k][p.key()] = p.value();
          }
        }
      } else if (k == "required" && out[k].is_array() && it.value().is_array()) {
        for (const ojson& r : it.value()) {
          if (std::find(out[k].begin(), out[k].end(), r) == out[k].end()) out[k].push_back(r);
        }
      } else if (k == "type") {
        const std::vector<std::string> ta = types_of(a), tb = types_of(b);
        ojson both = ojson::array();
        for (const std::string& x : ta) {
          for (const std::string& y : tb) {
            if (x == y || (x == "number" && y == "integer")) both.push_back(y);
            else if (x == "integer" && y == "number") both.push_back(x);
          }
        }
        if (both.empty()) fail("format: allOf at {} combines types that have no value in common", path);
        out[k] = both.size() == 1 ? both[0] : both;
      } else if ((k == "anyOf" || k == "oneOf") && out[k] != it.value()) {
        fail("format: allOf at {} combines several '{}' lists, which is not supported", path, k);
      } else {
        out[k] = it.value();
      }
    }
    return out;
  }

  static bool has_validity_keywords(const ojson& s, std::initializer_list<const char*> except) {
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (annotation_keywords().contains(it.key())) continue;
      if (std::any_of(except.begin(), except.end(), [&](const char* e) { return it.key() == e; })) continue;
      return true;
    }
    return false;
  }

  Sym ref_rule(const std::string& ref, const std::string& path) {
    if (auto it = ref_rules_.find(ref); it != ref_rules_.end()) return GrammarBuilder::ref(it->second);
    const uint32_t r = b_.new_rule("ref:" + ref);
    ref_rules_[ref] = r;  // before compiling the target, so recursion finds it
    const ojson& target = resolve(ref, path);
    b_.add_alt(r, {schema(target, ref)});
    return GrammarBuilder::ref(r);
  }

  Sym schema(const ojson& s, const std::string& path) {
    if (s.is_boolean()) {
      if (!s.get<bool>()) fail("format: the schema at {} is `false`, which no value satisfies", path);
      return value_any();
    }
    if (!s.is_object()) fail("format: the schema at {} must be an object or a boolean, got {}", path, s.type_name());
    for (const char* kw : kUnsupported) {
      if (s.contains(kw)) fail("format: JSON schema keyword '{}' (at {}) is not supported", kw, path);
    }
    if (s.contains("$ref")) {
      if (!s["$ref"].is_string()) fail("format: $ref at {} must be a string", path);
      if (!has_validity_keywords(s, {"$ref"})) return ref_rule(s["$ref"].get<std::string>(), path);
      return schema(flatten(s, path, 0), path);
    }
    if (s.contains("allOf")) return schema(flatten(s, path, 0), path);
    if (s.contains("anyOf") && s.contains("oneOf"))
      fail("format: a schema with both 'anyOf' and 'oneOf' (at {}) is not supported", path);
    for (const char* kw : {"anyOf", "oneOf"}) {
      if (!s.contains(kw)) continue;
      const ojson& branches = s[kw];
      if (!branches.is_array() || branches.empty()) fail("format: '{}' at {} must be a non-empty array", kw, path);
      ojson base = s;
      base.erase(kw);
      const bool merge_base = has_validity_keywords(base, {"nullable"});
      std::vector<Seq> alts;
      for (size_t i = 0; i < branches.size(); ++i) {
        const std::string p = fmt::format("{}/{}/{}", path, kw, i);
        alts.push_back({schema(merge_base ? merge(base, flatten(branches[i], p, 0), p) : branches[i], p)});
      }
      if (s.value("nullable", false)) alts.push_back({null()});
      return b_.alts(kw, std::move(alts));
    }
    if (s.value("nullable", false)) {
      ojson inner = s;
      inner.erase("nullable");
      return b_.alts("nullable", {{schema(inner, path)}, {null()}});
    }
    if (s.contains("const")) return literal(s["const"].dump());
    if (s.contains("enum")) {
      const ojson& e = s["enum"];
      if (!e.is_array() || e.empty()) fail("format: 'enum' at {} must be a non-empty array", path);
      std::vector<Seq> alts;
      for (const ojson& v : e) alts.push_back(b_.lit(v.dump()));
      return b_.alts("enum", std::move(alts));
    }
    if (s.contains("type")) {
      const ojson& t = s["type"];
      if (t.is_array()) {
        if (t.empty()) fail("format: 'type' at {} must not be an empty array", path);
        std::vector<Seq> alts;
        for (const ojson& x : t) {
          if (!x.is_string()) fail("format: 'type' at {} must hold strings", path);
          alts.push_back({typed(s, x.get<std::string>(), path)});
        }
        return b_.alts("types", std::move(alts));
      }
      if (!t.is_string()) fail("format: 'type' at {} must be a string or an array of strings", path);
      return typed(s, t.get<std::string>(), path);
    }
    // No type: infer it from the keywords that only make sense for one.
    for (const char* kw : {"properties", "additionalProperties", "required"})
      if (s.contains(kw)) return object(s, path);
    for (const char* kw : {"items", "prefixItems", "minItems", "maxItems"})
      if (s.contains(kw)) return array(s, path);
    for (const char* kw : {"minLength", "maxLength", "format"})
      if (s.contains(kw)) return string(s, path);
    return value_any();
  }

  Sym typed(const ojson& s, const std::string& type, const std::string& path) {
    if (type == "object") return object(s, path);
    if (type == "array") return array(s, path);
    if (type == "string") return string(s, path);
    if (type == "boolean") return boolean();
    if (type == "null") return null();
    if (type == "number" || type == "integer") {
      bool non_negative = false;
      for (const char* kw : {"minimum", "exclusiveMinimum"}) {
        if (s.contains(kw) && s[kw].is_number() && s[kw].get<double>() >= 0) non_negative = true;
      }
      return number(type == "integer", non_negative);
    }
    fail("format: unknown type '{}' at {}", type, path);
  }

  Sym object(const ojson& s, const std::string& path) {
    ojson props = ojson::object();
    if (s.contains("properties")) {
      if (!s["properties"].is_object()) fail("format: 'properties' at {} must be an object", path);
      props = s["properties"];
    }
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) fail("format: 'required' at {} must be an array of strings", path);
      for (const ojson& r : s["required"]) {
        if (!r.is_string()) fail("format: 'required' at {} must be an array of strings", path);
        required.insert(r.get<std::string>());
        if (!props.contains(r.get<std::string>())) props[r.get<std::string>()] = true;
      }
    }
    // Extra keys: allowed when explicitly asked for, or when no properties are named.
    std::optional<Sym> extra_value;
    const ojson addl = s.contains("additionalProperties") ? s["additionalProperties"] : ojson(props.empty());
    if (!(addl.is_boolean() && !addl.get<bool>())) {
      extra_value = schema(addl, path + "/additionalProperties");
    }
    if (props.empty()) {
      if (extra_value) return object_of(*extra_value, "object");
      return literal("{}");
    }

    std::vector<Seq> member;  // '"key"' colon value
    std::vector<bool> optional;
    for (auto it = props.begin(); it != props.end(); ++it) {
      Seq m = b_.lit(ojson(it.key()).dump());
      m += colon();
      m.push_back(schema(it.value(), path + "/properties/" + it.key()));
      member.push_back(std::move(m));
      optional.push_back(!required.contains(it.key()));
    }
    const size_t n = member.size();
    // after[i]: the rest from property i when something was already written
    // (so each member starts with a comma); first[i]: nothing written yet.
    std::vector<Sym> after(n + 1), first(n + 1);
    {
      Seq extra_member;
      if (extra_value) {
        extra_member = {string_any()};
        extra_member += colon();
        extra_member.push_back(*extra_value);
      }
      Seq more = comma();
      more += extra_member;
      after[n] = extra_value ? b_.star("props-extra", more) : b_.alts("props-end", {{}});
      if (extra_value) {
        Seq members = extra_member;
        members.push_back(after[n]);
        first[n] = b_.opt("props-extra-first", std::move(members));
      } else {
        first[n] = after[n];
      }
    }
    for (size_t i = n; i-- > 0;) {
      Seq with_comma = comma();
      with_comma += member[i];
      with_comma.push_back(after[i + 1]);
      Seq without = member[i];
      without.push_back(after[i + 1]);
      std::vector<Seq> a{with_comma}, f{without};
      if (optional[i]) {
        a.push_back({after[i + 1]});
        f.push_back({first[i + 1]});
      }
      after[i] = b_.alts("props-after", std::move(a));
      first[i] = b_.alts("props-first", std::move(f));
    }
    return b_.alts("object", {{b_.byte('{'), first[0], b_.byte('}')}});
  }

  Sym array(const ojson& s, const std::string& path) {
    std::vector<Sym> prefix;
    std::optional<Sym> rest;
    bool rest_allowed = true;
    auto set_rest = [&](const ojson& r, const std::string& p) {
      if (r.is_boolean() && !r.get<bool>()) {
        rest_allowed = false;
      } else {
        rest = schema(r, p);
      }
    };
    if (s.contains("prefixItems")) {
      const ojson& pi = s["prefixItems"];
      if (!pi.is_array()) fail("format: 'prefixItems' at {} must be an array", path);
      for (size_t i = 0; i < pi.size(); ++i) prefix.push_back(schema(pi[i], fmt::format("{}/prefixItems/{}", path, i)));
    }
    if (s.contains("items")) {
      const ojson& it = s["items"];
      if (it.is_array()) {  // draft 4 tuple form
        if (!prefix.empty()) fail("format: both 'prefixItems' and an array 'items' at {}", path);
        for (size_t i = 0; i < it.size(); ++i) prefix.push_back(schema(it[i], fmt::format("{}/items/{}", path, i)));
        if (s.contains("additionalItems")) set_rest(s["additionalItems"], path + "/additionalItems");
      } else {
        set_rest(it, path + "/items");
      }
    }
    if (rest_allowed && !rest) rest = value_any();
    const int64_t k = static_cast<int64_t>(prefix.size());
    const int64_t min = s.contains("minItems") ? count_keyword(s, "minItems", path) : 0;
    int64_t max = s.contains("maxItems") ? count_keyword(s, "maxItems", path) : -1;
    if (!rest_allowed && (max < 0 || max > k)) max = k;
    if (max >= 0 && min > max) fail("format: minItems > maxItems (or more than the items allowed) at {}", path);

    auto item = [&](int64_t j) { return j < k ? prefix[static_cast<size_t>(j)] : *rest; };
    // tail(j): the rest of the array after j items were written.
    std::vector<Seq> tails(static_cast<size_t>(std::max(k, min) + 2));
    auto tail = [&](int64_t j) -> Seq {
      // Built bottom-up below; this lambda only reads.
      return tails[static_cast<size_t>(j)];
    };
    const int64_t top = std::max(k, min);
    for (int64_t j = top; j >= 1; --j) {
      Seq t;
      if (max >= 0 && j >= max) {
        t = {};
      } else if (j >= k && j >= min) {
        Seq more = comma();
        more.push_back(*rest);
        t = max < 0 ? Seq{b_.star("items-more", more)} : b_.repeat("items-more", more, 0, max - j);
      } else {
        Seq more = comma();
        more.push_back(item(j));
        more += tail(j + 1);
        t = j >= min ? Seq{b_.opt("items-opt", more)} : more;
      }
      tails[static_cast<size_t>(j)] = std::move(t);
    }
    if (max == 0) return literal("[]");
    Seq body{item(0)};
    if (top >= 1) {
      body += tail(1);
    } else {  // k == 0 and min == 0: uniform from the start
      Seq more = comma();
      more.push_back(*rest);
      body += max < 0 ? Seq{b_.star("items-more", more)} : b_.repeat("items-more", more, 0, max - 1);
    }
    Seq inside = min == 0 ? Seq{b_.opt("items", body)} : body;
    Seq whole{b_.byte('[')};
    whole += inside;
    whole.push_back(b_.byte(']'));
    return b_.alts("array", {whole});
  }

  Sym string(const ojson& s, const std::string& path) {
    const std::string format = s.contains("format") && s["format"].is_string() ? s["format"].get<std::string>() : "";
    const Sym dq = b_.byte('"');
    auto two = [&](ByteSet a, ByteSet b) { return Seq{b_.set(a), b_.set(b)}; };
    auto r = [](char lo, char hi) { return ByteSet::range(static_cast<uint8_t>(lo), static_cast<uint8_t>(hi)); };
    auto date = [&] {
      Seq d(4, digit());
      d.push_back(b_.byte('-'));
      d.push_back(b_.alts("month", {two(r('0', '0'), r('1', '9')), two(r('1', '1'), r('0', '2'))}));
      d.push_back(b_.byte('-'));
      d.push_back(
          b_.alts("day", {two(r('0', '0'), r('1', '9')), two(r('1', '2'), r('0', '9')), two(r('3', '3'), r('0', '1'))}));
      return d;
    };
    auto time = [&] {
      const Sym hour = b_.alts("hour", {two(r('0', '1'), r('0', '9')), two(r('2', '2'), r('0', '3'))});
      const Seq minute = two(r('0', '5'), r('0', '9'));
      Seq t{hour, b_.byte(':')};
      t += minute;
      t.push_back(b_.byte(':'));
      t.push_back(b_.alts("second", {minute, b_.lit("60")}));
      Seq frac{b_.byte('.')};
      frac += b_.repeat("frac", {digit()}, 1, 9);
      t.push_back(b_.opt("time-frac", frac));
      ByteSet sign;
      sign.add('+');
      sign.add('-');
      Seq offset{b_.set(sign), hour, b_.byte(':')};
      offset += minute;
      t.push_back(b_.alts("time-offset", {b_.lit("Z"), offset}));
      return t;
    };
    Seq body;
    if (format == "date") {
      body = date();
    } else if (format == "time") {
      body = time();
    } else if (format == "date-time") {
      body = date();
      body.push_back(b_.byte('T'));
      body += time();
    } else if (format == "uuid") {
      body = hex_n(8);
      for (int n : {4, 4, 4, 12}) {
        body.push_back(b_.byte('-'));
        body += hex_n(n);
      }
    } else {
      const int64_t min = s.contains("minLength") ? count_keyword(s, "minLength", path) : 0;
      const int64_t max = s.contains("maxLength") ? count_keyword(s, "maxLength", path) : -1;
      if (max >= 0 && min > max) fail("format: minLength > maxLength at {}", path);
      if (min == 0 && max < 0) return string_any();
      body = b_.repeat("chars", {str_char()}, min, max);
    }
    Seq whole{dq};
    whole += body;
    whole.push_back(dq);
    return b_.alts(format.empty() ? "string" : format, {whole});
  }

  GrammarBuilder b_;
  const ojson& root_;
  std::map<std::string, uint32_t> ref_rules_;
  std::optional<Sym> opt_space_, str_char_, string_any_, boolean_, null_, value_any_, object_any_,
      array_any_;
  std::optional<Sym> number_[2][2], int_part_;
};

}  // namespace

Grammar compile_schema(const ojson& format) {
  if (format.is_string()) {
    if (format.get<std::string>() != "json")
      fail("format must be \"json\" or a JSON schema object, got the string \"{}\"", format.get<std::string>());
    return SchemaCompiler(format).compile_json_object();
  }
  if (!format.is_object() && !format.is_boolean())
    fail("format must be \"json\" or a JSON schema object, got {}", format.type_name());
  return SchemaCompiler(format).compile_root();
}

}  // namespace pl::grammar
