// Internal: the compiled Format and its per-vocabulary mask cache.
//
// Masking a 128k vocabulary by walking the token trie with the matcher costs
// milliseconds inside a string, where almost every token is allowed. But
// whether a token is allowed from a stack depends mostly on the stack's top
// few frames only: so for each MaskKey (the positions of the top kKeyDepth
// frames) we walk the trie once with the frames below replaced by an unknown
// "hole" and sort every token into
//   accepted   some path consumed all its bytes without returning into the hole
//              (allowed whatever lies below),
//   uncertain  some path returned into the hole (depends on the frames below:
//              checked exactly at mask time, usually a few hundred tokens such
//              as those that close a string or a number and go on),
//   rejected   everything else.
// mask() then ORs the accepted sets of the live stacks' positions and checks
// only the uncertain tokens. Positions are computed lazily, on first use, per
// (Format, TokenTable) pair, and kept for the Format's lifetime.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "grammar/grammar.h"
#include "grammar/ir.h"

namespace pl::grammar {

struct PosMask {
  // Accepted tokens: a bitset over the vocabulary when many, else sorted ids.
  std::vector<uint64_t> bits;  // [ceil(n_vocab / 64)] or empty
  std::vector<int32_t> ids;
  // Uncertain tokens as index ranges into TokenTable::trie_tokens().
  std::vector<std::pair<uint32_t, uint32_t>> uncertain;

  size_t n_uncertain() const {
    size_t n = 0;
    for (auto [b, e] : uncertain) n += e - b;
    return n;
  }
};

// The positions of a stack's top frames, top first. One frame is not enough:
// the top frame is often a tiny rule (one string character, an optional
// space) that ends after a byte, which would make nearly every token
// "uncertain". A key that reaches the bottom of the parse ends with
// kKeyRoot and its mask is exact.
inline constexpr size_t kKeyDepth = 3;
inline constexpr uint32_t kKeyRoot = UINT32_MAX;
inline constexpr uint32_t kKeyNone = UINT32_MAX - 1;  // after kKeyRoot
struct MaskKey {
  std::array<uint32_t, kKeyDepth + 1> pos;
  bool operator==(const MaskKey&) const = default;
  auto operator<=>(const MaskKey&) const = default;
};
struct MaskKeyHash {
  size_t operator()(const MaskKey& k) const {
    uint64_t h = 0;
    for (uint32_t p : k.pos) h = (h ^ p) * 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

// The trie walk behind PosMask, from a stack with the key's frames.
PosMask compute_pos_mask(const Grammar& g, const TokenTable& table, const MaskKey& key);

class Format {
 public:
  Format(Grammar g, std::string source) : g_(std::move(g)), source_(std::move(source)) {}

  const Grammar& grammar() const { return g_; }
  const std::string& source() const { return source_; }  // canonical dump of the format JSON

  // Thread-safe; the returned reference lives as long as the Format.
  const PosMask& pos_mask(const TokenTable& table, const MaskKey& key) const;

 private:
  Grammar g_;
  std::string source_;
  mutable std::mutex mu_;
  // table serial -> key -> mask, filled lazily
  mutable std::unordered_map<uint64_t, std::unordered_map<MaskKey, std::unique_ptr<const PosMask>, MaskKeyHash>>
      masks_;
};

}  // namespace pl::grammar
