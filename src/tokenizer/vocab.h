// The vocabulary as read from tokenizer.ggml.* metadata: token texts, scores,
// types, special ids, flags, the added-token matcher and the end-of-generation
// set. Shared by every tokenizer kind. Internal to pl_tokenizer.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace pl {
class GgufFile;
}

namespace pl::tok {

// Exact string -> token id over strings owned elsewhere (a Vocab's texts or
// pieces, passed to find). Open addressing over 8-byte slots holding a hash
// tag and the id, so a lookup is one slot probe and one string compare: this
// runs for every merge candidate and every word, and at load for every merge.
class TextIndex {
 public:
  // Indexes keys[id] for every id with include(id) and a non-empty key; on duplicates the first id wins.
  template <class Include>
  void build(const std::vector<std::string>& keys, Include include) {
    size_t cap = 16;
    while (cap < keys.size() * 2) cap *= 2;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    for (size_t id = 0; id < keys.size(); ++id) {
      if (keys[id].empty() || !include(static_cast<int32_t>(id))) continue;
      insert(keys[id], static_cast<int32_t>(id), keys);
    }
  }
  int32_t find(std::string_view s, const std::vector<std::string>& keys) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash(s);
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) return -1;
      if (slot.tag == tag && keys[slot.id] == s) return slot.id;
    }
  }

 private:
  struct Slot {
    uint32_t tag = 0;
    int32_t id = -1;  // -1: empty
  };
  static uint64_t hash(std::string_view s) { return std::hash<std::string_view>{}(s); }
  void insert(std::string_view s, int32_t id, const std::vector<std::string>& keys) {
    const uint64_t h = hash(s);
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (slot.id < 0) {
        slot = {tag, id};
        return;
      }
      if (slot.tag == tag && keys[slot.id] == s) return;
    }
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// Leftmost-longest matcher over added-token texts (a byte trie).
class SpecialMatcher {
 public:
  // always: also matched when parse_special is off (USER_DEFINED tokens).
  void add(std::string_view text, int32_t id, bool always);
  // Longest added token starting at text[pos]: {id, length}, or {-1, 0}.
  std::pair<int32_t, size_t> match(std::string_view text, size_t pos, bool parse_special) const;
  bool empty() const { return nodes_.size() <= 1; }
  // False when no added token starts with this byte (the common case, checked inline).
  bool may_start(uint8_t b) const { return first_byte_[b]; }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // (byte, node index), sorted by byte
    int32_t id_special = -1;                             // token ending here, parse_special on
    int32_t id_always = -1;                              // token ending here, parse_special off
  };
  std::vector<Node> nodes_{1};
  std::array<bool, 256> first_byte_{};  // cheap rejection of positions no token starts at
};

struct Vocab {
  TokenizerKind kind = TokenizerKind::Spm;
  std::string model;  // tokenizer.ggml.model
  std::string pre;    // tokenizer.ggml.pre ("" when absent)

  std::vector<std::string> text;  // [n_vocab] as stored
  std::vector<float> score;       // [n_vocab] SPM merge priority (0 when absent)
  std::vector<TokenType> type;    // [n_vocab]
  std::vector<std::string> piece;  // [n_vocab] decoded bytes (for CONTROL/UNKNOWN: the text)
  TextIndex text_index;  // text -> id, every token
  std::array<int32_t, 256> byte_token{};  // SPM <0xXX> tokens, -1 when absent

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, sep = -1, pad = -1;
  bool add_bos = false, add_eos = false, add_sep = false;
  bool add_space_prefix = false;     // SPM dummy prefix
  bool remove_extra_spaces = false;  // SPM: trim and collapse runs of ' '

  SpecialMatcher specials;
  std::vector<int32_t> eog;  // sorted, unique

  int32_t n() const { return static_cast<int32_t>(text.size()); }
  // Tokens the model-specific algorithms may produce from text.
  bool is_text_token(int32_t id) const {
    const TokenType t = type[id];
    return t == TokenType::Normal || t == TokenType::UserDefined || t == TokenType::Undefined ||
           t == TokenType::Unused;
  }
  int32_t find(std::string_view s) const { return text_index.find(s, text); }
  int32_t find_text_token(std::string_view s) const {
    const int32_t id = find(s);
    return id >= 0 && is_text_token(id) ? id : -1;
  }
};

// Reads tokens, scores, types, special ids and flags (with the per-model
// defaults), builds the added-token matcher, the end-of-generation set and the
// decoded pieces. Throws pl::Error naming the key for bad metadata.
Vocab load_vocab(const GgufFile& f);
void build_pieces(Vocab& v);

}  // namespace pl::tok
