// The grammar IR: a context-free grammar over bytes.
//
// A rule is a list of alternatives; an alternative is a sequence of symbols,
// each either a byte set (one input byte out of a 256-bit set) or a reference
// to a rule. Repetition and optionality are desugared into helper rules by
// GrammarBuilder, so the matcher only ever sees sets, references and ends.
// UTF-8 is handled at this level: a character class is a small rule of byte
// sequences (utf8_char_rule).
//
// Grammar is the flat, immutable form the matcher runs on: every alternative
// laid out in `elems` and closed by an End element, so a parse position is a
// single index.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pl::grammar {

// 256-bit set of byte values.
struct ByteSet {
  std::array<uint64_t, 4> w{};

  static ByteSet of(uint8_t b) {
    ByteSet s;
    s.add(b);
    return s;
  }
  static ByteSet range(uint8_t lo, uint8_t hi) {
    ByteSet s;
    s.add_range(lo, hi);
    return s;
  }
  void add(uint8_t b) { w[b >> 6] |= uint64_t{1} << (b & 63); }
  void add_range(uint8_t lo, uint8_t hi) {
    for (unsigned b = lo; b <= hi; ++b) add(static_cast<uint8_t>(b));
  }
  void remove(uint8_t b) { w[b >> 6] &= ~(uint64_t{1} << (b & 63)); }
  bool test(uint8_t b) const { return (w[b >> 6] >> (b & 63)) & 1; }
  bool operator==(const ByteSet&) const = default;
  auto operator<=>(const ByteSet&) const = default;
};

struct Sym {
  enum class Kind : uint8_t { Set, Ref };
  Kind kind;
  uint32_t id;  // Set: index into the builder's sets; Ref: rule id
};
using Seq = std::vector<Sym>;

inline Seq& operator+=(Seq& a, const Seq& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
inline Seq& operator+=(Seq& a, Sym b) {
  a.push_back(b);
  return a;
}

// Flat form. Position p is an index into elems; a parse frame sits at the
// element it expects next.
struct Elem {
  enum class Kind : uint8_t { Set, Ref, End };
  Kind kind;
  uint32_t arg;  // Set: index into sets; Ref: rule id; End: unused
};

struct Grammar {
  std::vector<ByteSet> sets;
  std::vector<Elem> elems;
  std::vector<uint32_t> alt_start;   // start position of every alternative, grouped by rule
  std::vector<uint32_t> rule_first;  // rule r's alternatives: alt_start[rule_first[r] .. rule_first[r + 1])
  std::vector<std::string> rule_names;
  // elems[kStartPos] = Ref(root), elems[kStartPos + 1] = End: the parse starts there.
  static constexpr uint32_t kStartPos = 0;

  size_t n_rules() const { return rule_names.size(); }
  // Human-readable dump (EBNF-like), for tests and debugging.
  std::string to_string() const;
};

class GrammarBuilder {
 public:
  GrammarBuilder();

  uint32_t new_rule(std::string name);
  void add_alt(uint32_t rule, Seq alt);
  bool has_alts(uint32_t rule) const { return !rules_[rule].alts.empty(); }

  Sym set(const ByteSet& s);
  Sym byte(uint8_t b) { return set(ByteSet::of(b)); }
  Seq lit(std::string_view bytes);
  static Sym ref(uint32_t rule) { return {Sym::Kind::Ref, rule}; }

  // A new rule with the given alternatives, as a one-symbol reference.
  Sym alts(std::string name, std::vector<Seq> alternatives);
  Sym opt(std::string name, Seq s);   // s | ε
  Sym star(std::string name, Seq s);  // s*  (right-recursive; the matcher's tail calls keep it flat)
  // s{min,max}; max < 0 means unbounded. Bounded tails nest as s (s (s)?)? so
  // that every count has exactly one parse.
  Seq repeat(std::string name, const Seq& s, int64_t min, int64_t max);

  // Any single well-formed UTF-8 character whose code point is >= 0x80 (the
  // multi-byte forms of Unicode Table 3-7); a one-symbol reference.
  Sym utf8_multibyte();

  // Flattens, checks the size limit and that no rule can reach itself without
  // consuming a byte (left recursion would make the matcher loop). Throws
  // pl::Error when the grammar is too large or left-recursive.
  Grammar build(uint32_t root) const;

  size_t n_symbols() const { return n_symbols_; }

 private:
  struct Rule {
    std::string name;
    std::vector<Seq> alts;
  };
  std::vector<Rule> rules_;
  std::vector<ByteSet> sets_;
  size_t n_symbols_ = 0;
  uint32_t utf8_rule_ = UINT32_MAX;
};

// Limits: a schema that needs more than this many grammar symbols (e.g. a
// huge maxLength or maxItems) is rejected rather than compiled slowly.
inline constexpr size_t kMaxGrammarSymbols = 1u << 20;

}  // namespace pl::grammar
