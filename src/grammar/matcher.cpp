#include "grammar/matcher.h"

#include <algorithm>
#include <unordered_map>

#include "core/error.h"

namespace pl::grammar {

Matcher::Matcher(const Grammar& g) : g_(&g), intern_(kInternSlots, UINT32_MAX) { nodes_.reserve(256); }

uint32_t Matcher::intern(uint32_t pos, uint32_t parent) {
  const uint64_t key = (uint64_t{pos} << 32) | parent;
  uint32_t& slot = intern_[((key * 0x9E3779B97F4A7C15ull) >> 40) % kInternSlots];
  if (slot < nodes_.size() && nodes_[slot].pos == pos && nodes_[slot].parent == parent) return slot;
  const auto id = static_cast<uint32_t>(nodes_.size());
  PL_CHECK(id < kHoleFrame, "grammar arena overflow");
  nodes_.push_back({pos, parent});
  slot = id;
  return id;
}

void Matcher::expand(uint32_t pos, uint32_t parent, std::vector<Top>& out, uint32_t& flags) {
  const std::vector<Elem>& elems = g_->elems;
  for (;;) {
    const Elem e = elems[pos];
    if (e.kind == Elem::Kind::Set) {
      if (out.size() >= kMaxStacks) {
        flags |= kOverflow;
        return;
      }
      out.push_back({pos, parent});
      return;
    }
    if (e.kind == Elem::Kind::End) {
      if (parent == kRootFrame) {
        flags |= kCanEnd;
        return;
      }
      if (parent == kHoleFrame) {
        flags |= kHitHole;
        return;
      }
      const Node n = nodes_[parent];
      pos = n.pos;
      parent = n.parent;
      continue;
    }
    // A rule reference: push the return frame unless it is a tail call.
    uint32_t ret = parent;
    if (elems[pos + 1].kind != Elem::Kind::End) {
      ret = intern(pos + 1, parent);
    }
    const uint32_t a0 = g_->rule_first[e.arg], a1 = g_->rule_first[e.arg + 1];
    for (uint32_t a = a0; a + 1 < a1; ++a) {
      expand(g_->alt_start[a], ret, out, flags);
      if (flags & kOverflow) return;
    }
    pos = g_->alt_start[a1 - 1];
    parent = ret;
  }
}

void Matcher::dedup(std::vector<Top>& v) {
  if (v.size() < 2) return;
  if (v.size() <= 16) {  // the usual case: a handful of stacks
    for (size_t i = 1; i < v.size(); ++i) {
      const Top t = v[i];
      size_t j = i;
      for (; j > 0 && v[j - 1].key() > t.key(); --j) v[j] = v[j - 1];
      v[j] = t;
    }
  } else {
    std::sort(v.begin(), v.end(), [](const Top& a, const Top& b) { return a.key() < b.key(); });
  }
  v.erase(std::unique(v.begin(), v.end(), [](const Top& a, const Top& b) { return a.key() == b.key(); }), v.end());
}

uint32_t Matcher::start(std::vector<Top>& out) { return expand_from(Grammar::kStartPos, kRootFrame, out); }

uint32_t Matcher::expand_from(uint32_t pos, uint32_t parent, std::vector<Top>& out) {
  out.clear();
  uint32_t flags = 0;
  expand(pos, parent, out, flags);
  dedup(out);
  return flags;
}

uint32_t Matcher::feed(std::span<const Top> in, uint8_t b, std::vector<Top>& out) {
  out.clear();
  uint32_t flags = 0;
  for (const Top& t : in) {
    if (!set_of(t.pos).test(b)) continue;
    flags |= kMatched;
    expand(t.pos + 1, t.parent, out, flags);
    if (flags & kOverflow) break;
  }
  dedup(out);
  return flags;
}

void Matcher::compact(std::vector<Top>& tops) {
  std::vector<Node> fresh;
  std::unordered_map<uint32_t, uint32_t> remap;
  std::vector<uint32_t> chain;
  auto copy = [&](uint32_t id) -> uint32_t {
    // Walk down to the first frame already copied (or the bottom), then copy
    // back up so that parents always precede their children.
    chain.clear();
    uint32_t cur = id;
    while (cur != kRootFrame && cur != kHoleFrame && !remap.contains(cur)) {
      chain.push_back(cur);
      cur = nodes_[cur].parent;
    }
    uint32_t below = (cur == kRootFrame || cur == kHoleFrame) ? cur : remap[cur];
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      fresh.push_back({nodes_[*it].pos, below});
      below = static_cast<uint32_t>(fresh.size() - 1);
      remap[*it] = below;
    }
    return (id == kRootFrame || id == kHoleFrame) ? id : remap[id];
  };
  for (Top& t : tops) t.parent = copy(t.parent);
  nodes_ = std::move(fresh);
  std::fill(intern_.begin(), intern_.end(), UINT32_MAX);
}

}  // namespace pl::grammar
