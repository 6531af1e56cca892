#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "core/error.h"
#include "grammar/format.h"
#include "grammar/grammar.h"
#include "grammar/matcher.h"
#include "grammar/token_table.h"

namespace pl::grammar {

// Arena frames kept before compact() copies out the live ones.
constexpr size_t kCompactAt = 4096;

struct Constraint::State {
  State(std::shared_ptr<const Format> f, std::shared_ptr<const TokenTable> t)
      : format(std::move(f)), table(std::move(t)), m(format->grammar()) {
    can_end = (m.start(tops) & kCanEnd) != 0;
  }

  // Feeds `bytes` from the current stacks; on success the result is in
  // scratch[which] and the flags of the last byte are returned. The arena
  // keeps the new frames: callers roll back when they only probe.
  bool run(std::string_view bytes, int& which, uint32_t& last_flags) const {
    const std::vector<Top>* cur = &tops;
    int w = 0;
    which = 0;
    for (char c : bytes) {
      std::vector<Top>& next = scratch[w];
      last_flags = m.feed(*cur, static_cast<uint8_t>(c), next);
      if (!(last_flags & kMatched) || (last_flags & kOverflow)) return false;
      cur = &next;
      which = w;
      w ^= 1;
    }
    return true;
  }

  bool allows_bytes(std::string_view bytes) const {
    if (bytes.empty()) return false;
    const size_t mark = m.mark();
    int which;
    uint32_t flags = 0;
    const bool ok = run(bytes, which, flags);
    m.rollback(mark);
    return ok;
  }

  bool allows(int32_t token) const {
    if (done) return false;
    if (token < 0 || token >= table->n_vocab()) return false;
    if (table->is_eog(token)) return can_end;
    return allows_bytes(table->bytes(token));
  }

  std::shared_ptr<const Format> format;
  std::shared_ptr<const TokenTable> table;
  mutable Matcher m;
  std::vector<Top> tops;
  bool can_end = false;
  bool done = false;  // an end-of-generation token was accepted
  mutable std::vector<Top> scratch[2];
  mutable std::vector<uint64_t> bits;  // [ceil(n_vocab / 64)]
  mutable std::vector<MaskKey> keys;
};

Constraint::Constraint(std::shared_ptr<const Format> format, std::shared_ptr<const TokenTable> table) {
  PL_CHECK(format != nullptr && table != nullptr, "Constraint needs a format and a token table");
  s_ = std::make_unique<State>(std::move(format), std::move(table));
}
Constraint::~Constraint() = default;
Constraint::Constraint(Constraint&&) noexcept = default;
Constraint& Constraint::operator=(Constraint&&) noexcept = default;

bool Constraint::allows(int32_t token) const { return s_->allows(token); }

void Constraint::mask(std::span<float> logits) const {
  State& s = *s_;
  const TokenTable& table = *s.table;
  const auto n_vocab = static_cast<size_t>(table.n_vocab());
  const size_t n_words = (n_vocab + 63) / 64;
  s.bits.assign(n_words, 0);
  auto set_bit = [&](uint32_t id) { s.bits[id >> 6] |= uint64_t{1} << (id & 63); };
  auto has_bit = [&](uint32_t id) { return (s.bits[id >> 6] >> (id & 63)) & 1; };

  if (!s.done) {
    std::vector<MaskKey>& keys = s.keys;
    keys.clear();
    for (const Top& t : s.tops) {
      MaskKey k;
      k.pos.fill(kKeyNone);
      k.pos[0] = t.pos;
      uint32_t f = t.parent;
      for (size_t d = 1; d < k.pos.size(); ++d) {
        if (f == kRootFrame) {
          k.pos[d] = kKeyRoot;
          break;
        }
        if (d == kKeyDepth) break;  // deeper frames are the hole
        k.pos[d] = s.m.frame_pos(f);
        f = s.m.frame_parent(f);
      }
      keys.push_back(k);
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    std::vector<const PosMask*> masks;
    for (const MaskKey& k : keys) {
      const PosMask& pm = s.format->pos_mask(table, k);
      if (!pm.bits.empty()) {
        for (size_t w = 0; w < n_words; ++w) s.bits[w] |= pm.bits[w];
      } else {
        for (int32_t id : pm.ids) set_bit(static_cast<uint32_t>(id));
      }
      masks.push_back(&pm);
    }
    const auto& trie_tokens = table.trie_tokens();
    for (const PosMask* pm : masks) {
      for (auto [b, e] : pm->uncertain) {
        for (uint32_t t = b; t < e; ++t) {
          const auto id = static_cast<uint32_t>(trie_tokens[t]);
          if (!has_bit(id) && s.allows_bytes(table.bytes(static_cast<int32_t>(id)))) set_bit(id);
        }
      }
    }
    if (s.can_end) {
      for (int32_t id : table.eog_ids()) set_bit(static_cast<uint32_t>(id));
    }
  }

  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const size_t n = logits.size();
  for (size_t w = 0; w < n_words && w * 64 < n; ++w) {
    const uint64_t x = s.bits[w];
    if (x == ~uint64_t{0}) continue;
    const size_t base = w * 64;
    if (x == 0 && base + 64 <= n) {
      std::fill_n(logits.begin() + static_cast<std::ptrdiff_t>(base), 64, kNegInf);
      continue;
    }
    for (uint64_t z = ~x; z != 0; z &= z - 1) {
      const size_t i = base + static_cast<size_t>(__builtin_ctzll(z));
      if (i < n) logits[i] = kNegInf;
    }
  }
  for (size_t i = n_vocab; i < n; ++i) logits[i] = kNegInf;
}

void Constraint::accept(int32_t token) {
  State& s = *s_;
  if (!s.allows(token)) fail("token {} is not allowed by the output format here", token);
  if (s.table->is_eog(token)) {
    s.done = true;
    s.tops.clear();
    return;
  }
  int which;
  uint32_t flags = 0;
  const bool ok = s.run(s.table->bytes(token), which, flags);
  PL_CHECK(ok, "token {} allowed but not accepted", token);
  s.tops.swap(s.scratch[which]);
  s.can_end = (flags & kCanEnd) != 0;
  if (s.m.arena_size() > kCompactAt) s.m.compact(s.tops);
}

bool Constraint::must_end() const { return s_->done || (s_->tops.empty() && s_->can_end); }

}  // namespace pl::grammar
