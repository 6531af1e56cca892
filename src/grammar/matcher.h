// Byte-level pushdown recogniser over a Grammar, holding several parse stacks
// at once (anyOf, optional properties and enums make the grammar
// nondeterministic until enough bytes have been seen).
//
// A stack is a chain of frames. The top frame (Top) always sits at a byte-set
// element; the frames below it are return positions, stored once in an arena
// of immutable nodes and shared by every stack that has them in common. So a
// parse state is just a small vector of Tops: copying it is cheap, and rolling
// back after trying a byte is truncating the arena (mark/rollback), which the
// depth-first walks over the vocabulary trie rely on.
//
// Calls into a rule whose return position would be an End are tail calls: the
// callee returns straight to the caller's parent, so right-recursive
// repetition (`chars ::= char chars | ()`) runs in constant stack depth.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "grammar/ir.h"

namespace pl::grammar {

// Parent ids that are not arena nodes: the bottom of the real parse, and the
// "unknown context" used when precomputing token masks for one position.
inline constexpr uint32_t kRootFrame = UINT32_MAX;
inline constexpr uint32_t kHoleFrame = UINT32_MAX - 1;

// More live stacks than this (after the expansion of one byte) is treated as a
// dead end rather than letting a pathological schema blow up time and memory.
inline constexpr size_t kMaxStacks = 1024;

struct Top {
  uint32_t pos;     // a Set element of the grammar
  uint32_t parent;  // arena node id, kRootFrame or kHoleFrame
  uint64_t key() const { return (uint64_t{pos} << 32) | parent; }
};

// feed()/start() result bits.
enum FeedFlags : uint32_t {
  kMatched = 1,   // some stack accepted the byte
  kCanEnd = 2,    // some stack completed the root rule: the text may end here
  kHitHole = 4,   // some stack returned into kHoleFrame (the outcome depends on unknown context)
  kOverflow = 8,  // more than kMaxStacks stacks: the result must be treated as dead
};

class Matcher {
 public:
  explicit Matcher(const Grammar& g);

  const Grammar& grammar() const { return *g_; }

  // The stacks at the start of the text. Returns flags (kCanEnd when the
  // grammar accepts the empty text).
  uint32_t start(std::vector<Top>& out);
  // Stacks expanded from one frame at `pos` with parent `parent`, for
  // precomputation from a single position over an unknown context.
  uint32_t expand_from(uint32_t pos, uint32_t parent, std::vector<Top>& out);
  // Advances every stack in `in` over byte b into `out` (cleared first;
  // deduplicated). `in` and `out` must not alias.
  uint32_t feed(std::span<const Top> in, uint8_t b, std::vector<Top>& out);

  // Whether byte b can follow some stack (no expansion, no allocation).
  bool any_accepts(std::span<const Top> in, uint8_t b) const {
    for (const Top& t : in)
      if (set_of(t.pos).test(b)) return true;
    return false;
  }

  // The frames below the tops, for building mask-cache keys.
  uint32_t frame_pos(uint32_t id) const { return nodes_[id].pos; }
  uint32_t frame_parent(uint32_t id) const { return nodes_[id].parent; }
  // A return frame at `pos` above `parent` (for reconstructing a stack's top frames).
  uint32_t push_frame(uint32_t pos, uint32_t parent) { return intern(pos, parent); }

  size_t mark() const { return nodes_.size(); }
  void rollback(size_t m) { nodes_.resize(m); }
  size_t arena_size() const { return nodes_.size(); }
  // Copies the frames reachable from `tops` into a fresh arena and renumbers
  // the parents in `tops`: called after committing text so the arena does not
  // grow with the length of the output.
  void compact(std::vector<Top>& tops);

 private:
  struct Node {
    uint32_t pos;
    uint32_t parent;
  };
  const ByteSet& set_of(uint32_t pos) const { return g_->sets[g_->elems[pos].arg]; }
  void expand(uint32_t pos, uint32_t parent, std::vector<Top>& out, uint32_t& flags);
  uint32_t intern(uint32_t pos, uint32_t parent);
  static void dedup(std::vector<Top>& v);

  const Grammar* g_;
  std::vector<Node> nodes_;
  // Hash-consing of frames: equal (pos, parent) pairs get one node id, so
  // stacks that converge (two paths into the same rule) compare equal and
  // dedup() merges them instead of doubling. Direct-mapped, and entries are
  // verified against nodes_ on lookup, so rollback() needs no cleanup.
  static constexpr size_t kInternSlots = 4096;
  std::vector<uint32_t> intern_;  // [kInternSlots] node ids
};

}  // namespace pl::grammar
