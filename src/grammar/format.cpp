#include "grammar/format.h"

#include <list>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "grammar/matcher.h"
#include "grammar/schema.h"
#include "grammar/token_table.h"

namespace pl::grammar {

namespace {

// Recently used Formats by canonical source text. Bounded so that clients
// sending ever-new schemas cannot grow memory without limit.
class FormatCache {
 public:
  static constexpr size_t kCapacity = 64;

  std::shared_ptr<const Format> find(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
  }

  // Inserts unless another thread got there first; returns the cached one.
  std::shared_ptr<const Format> insert(const std::string& key, std::shared_ptr<const Format> f) {
    std::lock_guard lock(mu_);
    if (auto it = index_.find(key); it != index_.end()) return it->second->second;
    lru_.emplace_front(key, std::move(f));
    index_[key] = lru_.begin();
    while (lru_.size() > kCapacity) {
      index_.erase(lru_.back().first);
      lru_.pop_back();
    }
    return lru_.front().second;
  }

 private:
  std::mutex mu_;
  std::list<std::pair<std::string, std::shared_ptr<const Format>>> lru_;
  std::unordered_map<std::string, decltype(lru_)::iterator> index_;
};

FormatCache& format_cache() {
  static FormatCache c;
  return c;
}

}  // namespace

std::shared_ptr<const Format> compile_format_ordered(const nlohmann::ordered_json& format) {
  std::string key = format.dump();
  if (auto f = format_cache().find(key)) return f;
  auto f = std::make_shared<const Format>(compile_schema(format), key);
  return format_cache().insert(key, std::move(f));
}

std::shared_ptr<const Format> compile_format(const nlohmann::json& format) {
  // The sorted-key dump is canonical, and parsing it keeps that order.
  return compile_format_ordered(nlohmann::ordered_json::parse(format.dump()));
}

const PosMask& Format::pos_mask(const TokenTable& table, const MaskKey& key) const {
  PL_CHECK(key.pos[0] < g_.elems.size() && g_.elems[key.pos[0]].kind == Elem::Kind::Set, "bad top position {}",
           key.pos[0]);
  {
    std::lock_guard lock(mu_);
    auto& per_table = masks_[table.serial()];
    if (auto it = per_table.find(key); it != per_table.end()) return *it->second;
  }
  // Computed outside the lock: other sequences keep masking meanwhile; a
  // racing duplicate computation is harmless (the first one is kept).
  auto m = std::make_unique<const PosMask>(compute_pos_mask(g_, table, key));
  std::lock_guard lock(mu_);
  auto& slot = masks_[table.serial()][key];
  if (!slot) slot = std::move(m);
  return *slot;
}

PosMask compute_pos_mask(const Grammar& g, const TokenTable& table, const MaskKey& key) {
  const auto& nodes = table.nodes();
  const auto& trie_tokens = table.trie_tokens();
  const size_t n_words = (static_cast<size_t>(table.n_vocab()) + 63) / 64;
  std::vector<uint64_t> bits(n_words, 0);
  size_t n_accepted = 0;
  PosMask out;
  auto add_uncertain = [&](uint32_t b, uint32_t e) {
    if (b == e) return;
    if (!out.uncertain.empty() && out.uncertain.back().second == b) {
      out.uncertain.back().second = e;
    } else {
      out.uncertain.push_back({b, e});
    }
  };

  Matcher m(g);
  const size_t max_depth = table.max_depth();
  std::vector<std::vector<Top>> st(max_depth + 1);  // stacks after each depth of the current path
  std::vector<size_t> marks(max_depth + 1);
  std::vector<uint8_t> hole(max_depth + 1, 0);  // some path on the way returned into the hole
  // Rebuild the key's frames, bottom first.
  size_t n_frames = 1;
  while (n_frames < key.pos.size() && key.pos[n_frames] < kKeyNone) ++n_frames;
  const bool exact = n_frames < key.pos.size() && key.pos[n_frames] == kKeyRoot;
  uint32_t parent = exact ? kRootFrame : kHoleFrame;
  for (size_t i = n_frames; i-- > 1;) parent = m.push_frame(key.pos[i], parent);
  st[0] = {Top{key.pos[0], parent}};
  marks[0] = m.mark();

  for (size_t i = 0; i < nodes.size();) {
    const TokenTable::Node& node = nodes[i];
    const size_t d = node.depth;
    if (!m.any_accepts(st[d - 1], node.byte)) {
      if (hole[d - 1]) add_uncertain(node.tok_begin, table.tok_begin(node.end));
      i = node.end;
      continue;
    }
    m.rollback(marks[d - 1]);
    const uint32_t flags = m.feed(st[d - 1], node.byte, st[d]);
    if (flags & kOverflow) {  // let the exact check at mask time decide
      add_uncertain(node.tok_begin, table.tok_begin(node.end));
      i = node.end;
      continue;
    }
    // Every byte so far was matched by the known frames: this node's tokens
    // are allowed whatever the context (a token is allowed when each of its
    // bytes is matched; expanding after the last one cannot fail). Deeper
    // bytes may need the context if some path returned into the hole.
    const bool h = hole[d - 1] || (flags & kHitHole);
    for (uint32_t t = node.tok_begin; t < table.tok_begin(i + 1); ++t) {
      const auto id = static_cast<uint32_t>(trie_tokens[t]);
      bits[id >> 6] |= uint64_t{1} << (id & 63);
      ++n_accepted;
    }
    hole[d] = h;
    marks[d] = m.mark();
    ++i;
  }

  if (n_accepted * 32 > static_cast<size_t>(table.n_vocab())) {
    out.bits = std::move(bits);
  } else {
    out.ids.reserve(n_accepted);
    for (size_t w = 0; w < n_words; ++w) {
      for (uint64_t x = bits[w]; x != 0; x &= x - 1) {
        out.ids.push_back(static_cast<int32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(x))));
      }
    }
  }
  return out;
}

}  // namespace pl::grammar
