#include "grammar/ir.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "core/error.h"

namespace pl::grammar {

GrammarBuilder::GrammarBuilder() = default;

uint32_t GrammarBuilder::new_rule(std::string name) {
  rules_.push_back({std::move(name), {}});
  return static_cast<uint32_t>(rules_.size() - 1);
}

void GrammarBuilder::add_alt(uint32_t rule, Seq alt) {
  PL_CHECK(rule < rules_.size(), "rule {} out of range", rule);
  n_symbols_ += alt.size() + 1;
  if (n_symbols_ > kMaxGrammarSymbols)
    fail("the schema needs a grammar of more than {} symbols (a very large maxLength, maxItems or enum?)",
         kMaxGrammarSymbols);
  rules_[rule].alts.push_back(std::move(alt));
}

Sym GrammarBuilder::set(const ByteSet& s) {
  // Few distinct sets exist (single bytes and a handful of classes); a linear
  // search over a sorted index would be overkill for compile-time use.
  for (size_t i = 0; i < sets_.size(); ++i) {
    if (sets_[i] == s) return {Sym::Kind::Set, static_cast<uint32_t>(i)};
  }
  sets_.push_back(s);
  return {Sym::Kind::Set, static_cast<uint32_t>(sets_.size() - 1)};
}

Seq GrammarBuilder::lit(std::string_view bytes) {
  Seq s;
  s.reserve(bytes.size());
  for (char c : bytes) s.push_back(byte(static_cast<uint8_t>(c)));
  return s;
}

Sym GrammarBuilder::alts(std::string name, std::vector<Seq> alternatives) {
  const uint32_t r = new_rule(std::move(name));
  for (Seq& a : alternatives) add_alt(r, std::move(a));
  return ref(r);
}

Sym GrammarBuilder::opt(std::string name, Seq s) {
  const uint32_t r = new_rule(std::move(name));
  add_alt(r, std::move(s));
  add_alt(r, {});
  return ref(r);
}

Sym GrammarBuilder::star(std::string name, Seq s) {
  const uint32_t r = new_rule(std::move(name));
  s.push_back(ref(r));
  add_alt(r, std::move(s));
  add_alt(r, {});
  return ref(r);
}

Seq GrammarBuilder::repeat(std::string name, const Seq& s, int64_t min, int64_t max) {
  PL_CHECK(min >= 0 && (max < 0 || max >= min), "bad repeat bounds {}..{}", min, max);
  Seq unit = s;
  if (unit.size() > 1) unit = {alts(name + "-item", {s})};
  if (static_cast<size_t>(min) * unit.size() > kMaxGrammarSymbols)
    fail("the schema needs a grammar of more than {} symbols (minimum count {})", kMaxGrammarSymbols, min);
  Seq out;
  for (int64_t i = 0; i < min; ++i) out += unit;
  if (max < 0) {
    out += star(name + "-star", unit);
  } else if (max > min) {
    // Innermost first: t_k = (unit t_{k-1})?
    Seq tail;
    for (int64_t i = 0; i < max - min; ++i) {
      Seq inner = unit;
      inner += tail;
      tail = {opt(fmt::format("{}-opt{}", name, max - min - i), std::move(inner))};
    }
    out += tail;
  }
  return out;
}

Sym GrammarBuilder::utf8_multibyte() {
  if (utf8_rule_ != UINT32_MAX) return ref(utf8_rule_);
  utf8_rule_ = new_rule("utf8-multibyte");
  const Sym cont = set(ByteSet::range(0x80, 0xBF));
  // Well-formed UTF-8 byte sequences (Unicode Table 3-7), excluding surrogates
  // and overlong forms.
  add_alt(utf8_rule_, {set(ByteSet::range(0xC2, 0xDF)), cont});
  add_alt(utf8_rule_, {byte(0xE0), set(ByteSet::range(0xA0, 0xBF)), cont});
  add_alt(utf8_rule_, {set(ByteSet::range(0xE1, 0xEC)), cont, cont});
  add_alt(utf8_rule_, {byte(0xED), set(ByteSet::range(0x80, 0x9F)), cont});
  add_alt(utf8_rule_, {set(ByteSet::range(0xEE, 0xEF)), cont, cont});
  add_alt(utf8_rule_, {byte(0xF0), set(ByteSet::range(0x90, 0xBF)), cont, cont});
  add_alt(utf8_rule_, {set(ByteSet::range(0xF1, 0xF3)), cont, cont, cont});
  add_alt(utf8_rule_, {byte(0xF4), set(ByteSet::range(0x80, 0x8F)), cont, cont});
  return ref(utf8_rule_);
}

namespace {

// Rules that can derive the empty string.
std::vector<bool> nullable_rules(const std::vector<std::vector<Seq>>& alts) {
  std::vector<bool> nullable(alts.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < alts.size(); ++r) {
      if (nullable[r]) continue;
      for (const Seq& a : alts[r]) {
        const bool all = std::all_of(a.begin(), a.end(),
                                     [&](const Sym& s) { return s.kind == Sym::Kind::Ref && nullable[s.id]; });
        if (all) {
          nullable[r] = changed = true;
          break;
        }
      }
    }
  }
  return nullable;
}

}  // namespace

Grammar GrammarBuilder::build(uint32_t root) const {
  PL_CHECK(root < rules_.size(), "root rule {} out of range", root);
  std::vector<std::vector<Seq>> alts(rules_.size());
  for (size_t r = 0; r < rules_.size(); ++r) {
    PL_CHECK(!rules_[r].alts.empty(), "grammar rule '{}' has no alternatives", rules_[r].name);
    alts[r] = rules_[r].alts;
  }

  // Left recursion: an edge r -> s when s can be reached from the start of an
  // alternative of r through nullable symbols only; a cycle would make the
  // matcher's expansion loop forever.
  const std::vector<bool> nullable = nullable_rules(alts);
  std::vector<std::vector<uint32_t>> left(rules_.size());
  for (size_t r = 0; r < rules_.size(); ++r) {
    for (const Seq& a : alts[r]) {
      for (const Sym& s : a) {
        if (s.kind == Sym::Kind::Set) break;
        left[r].push_back(s.id);
        if (!nullable[s.id]) break;
      }
    }
  }
  std::vector<uint8_t> color(rules_.size(), 0);  // 0 new, 1 on the DFS path, 2 done
  std::vector<std::pair<uint32_t, size_t>> dfs;
  for (uint32_t start = 0; start < rules_.size(); ++start) {
    if (color[start] != 0) continue;
    dfs.push_back({start, 0});
    color[start] = 1;
    while (!dfs.empty()) {
      auto& [r, i] = dfs.back();
      if (i < left[r].size()) {
        const uint32_t s = left[r][i++];
        if (color[s] == 1) fail("the grammar is left-recursive through rule '{}'", rules_[s].name);
        if (color[s] == 0) {
          color[s] = 1;
          dfs.push_back({s, 0});
        }
      } else {
        color[r] = 2;
        dfs.pop_back();
      }
    }
  }

  Grammar g;
  g.sets = sets_;
  g.elems.push_back({Elem::Kind::Ref, root});
  g.elems.push_back({Elem::Kind::End, 0});
  g.rule_first.reserve(rules_.size() + 1);
  for (size_t r = 0; r < rules_.size(); ++r) {
    g.rule_names.push_back(rules_[r].name);
    g.rule_first.push_back(static_cast<uint32_t>(g.alt_start.size()));
    for (const Seq& a : alts[r]) {
      g.alt_start.push_back(static_cast<uint32_t>(g.elems.size()));
      for (const Sym& s : a) {
        g.elems.push_back({s.kind == Sym::Kind::Set ? Elem::Kind::Set : Elem::Kind::Ref, s.id});
      }
      g.elems.push_back({Elem::Kind::End, 0});
    }
  }
  g.rule_first.push_back(static_cast<uint32_t>(g.alt_start.size()));
  return g;
}

namespace {

std::string set_to_string(const ByteSet& s) {
  auto show = [](unsigned b) {
    if (b >= 0x21 && b < 0x7F && b != '\\' && b != ']' && b != '-') return std::string(1, static_cast<char>(b));
    return fmt::format("\\x{:02X}", b);
  };
  std::string out = "[";
  for (unsigned b = 0; b < 256;) {
    if (!s.test(static_cast<uint8_t>(b))) {
      ++b;
      continue;
    }
    unsigned e = b;
    while (e + 1 < 256 && s.test(static_cast<uint8_t>(e + 1))) ++e;
    out += show(b);
    if (e > b) out += "-" + show(e);
    b = e + 1;
  }
  return out + "]";
}

}  // namespace

std::string Grammar::to_string() const {
  std::string out;
  for (size_t r = 0; r < n_rules(); ++r) {
    out += rule_names[r] + " ::=";
    for (uint32_t a = rule_first[r]; a < rule_first[r + 1]; ++a) {
      if (a > rule_first[r]) out += " |";
      uint32_t p = alt_start[a];
      if (elems[p].kind == Elem::Kind::End) out += " ()";
      for (; elems[p].kind != Elem::Kind::End; ++p) {
        out += " ";
        out += elems[p].kind == Elem::Kind::Set ? set_to_string(sets[elems[p].arg]) : rule_names[elems[p].arg];
      }
    }
    out += "\n";
  }
  return out;
}

}  // namespace pl::grammar
