// SentencePiece BPE ("llama" vocabs): spaces become U+2581, a dummy-prefix
// U+2581 starts the text, then adjacent symbols whose concatenation is a piece
// are merged, highest piece score first (leftmost on ties), with a binary heap
// over a linked list of symbols: O(n log n). Characters that end up in no
// piece fall back to their UTF-8 bytes as <0xXX> tokens.
//
// The reference runs one merge loop over the whole text. We cut the text
// first wherever two adjacent characters never occur next to each other
// inside any piece: no merge can ever join them (every merged symbol is a
// piece), so the segments are independent and the result is identical, but
// each merge loop stays small and cache-resident (a word, in practice).
#include <algorithm>
#include <bitset>
#include <functional>

#include "tokenizer/encoders.h"
#include "tokenizer/unicode.h"

namespace pl::tok {
namespace {

class SpmEncoder final : public Encoder {
 public:
  explicit SpmEncoder(const Vocab& v) : v_(v), joinable_(std::make_unique<std::bitset<kPairBits>>()) {
    for (int32_t id = 0; id < v.n(); ++id) {
      const std::string& t = v.text[id];
      if (t.empty() || !v.is_text_token(id)) continue;
      size_t pos = 0;
      char32_t prev = utf8_next(t, pos);
      while (pos < t.size()) {
        const char32_t cur = utf8_next(t, pos);
        joinable_->set(pair_bit(prev, cur));
        prev = cur;
      }
    }
  }

  void encode(std::string_view text, bool at_start, std::vector<int32_t>& out) const override {
    std::string normalized;
    if (v_.remove_extra_spaces) {
      normalized = collapse_spaces(text);
      text = normalized;
      if (text.empty()) return;
    }
    std::string s;
    s.reserve(text.size() + text.size() / 2 + kSpmSpace.size());
    if (v_.add_space_prefix && at_start) s.append(kSpmSpace);
    for (char c : text) {
      if (c == ' ') {
        s.append(kSpmSpace);
      } else {
        s.push_back(c);
      }
    }
    // Cut between characters no piece joins, and merge each segment alone.
    Scratch scratch;
    PieceCache cache(s.size());
    size_t seg_begin = 0;
    size_t pos = 0;
    char32_t prev = utf8_next(s, pos);
    while (pos < s.size()) {
      const size_t cur_begin = pos;
      const char32_t cur = utf8_next(s, pos);
      if (!joinable_->test(pair_bit(prev, cur))) {
        encode_segment(std::string_view(s).substr(seg_begin, cur_begin - seg_begin), scratch, cache, out);
        seg_begin = cur_begin;
      }
      prev = cur;
    }
    encode_segment(std::string_view(s).substr(seg_begin), scratch, cache, out);
  }

 private:
  struct Symbol {
    int32_t start;  // byte offset into the escaped text
    int32_t len;    // bytes; 0 once merged into its left neighbour
    int32_t prev;
    int32_t next;
  };
  struct Candidate {
    float score;
    int32_t left;
    int32_t right;
    int32_t len;  // bytes of the merged piece, to detect stale entries
  };
  // Heap order: highest score on top, then leftmost.
  static bool after(const Candidate& a, const Candidate& b) {
    return a.score != b.score ? a.score < b.score : a.left > b.left;
  }

  // sentencepiece's remove_extra_whitespaces: no leading or trailing spaces, single spaces inside.
  static std::string collapse_spaces(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    bool pending_space = false;
    for (char c : text) {
      if (c == ' ') {
        pending_space = !out.empty();
        continue;
      }
      if (pending_space) out.push_back(' ');
      pending_space = false;
      out.push_back(c);
    }
    return out;
  }

  // A bit per hashed (character, character) pair seen inside some piece.
  // Collisions only set extra bits, i.e. cut less: still exact.
  static constexpr size_t kPairBits = size_t{1} << 22;
  static size_t pair_bit(char32_t a, char32_t b) {
    const uint64_t k = (static_cast<uint64_t>(a) << 32) | b;
    return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> 42);
  }

  struct Scratch {
    std::vector<Symbol> sym;
    std::vector<Candidate> heap;
  };

  void encode_segment(std::string_view s, Scratch& scratch, PieceCache& cache, std::vector<int32_t>& out) const {
    if (s.empty()) return;
    if (cache.lookup(s, out)) return;
    const size_t begin = out.size();
    merge_and_emit(s, scratch, out);
    cache.store(s, begin, out.size());
  }

  void merge_and_emit(std::string_view s, Scratch& scratch, std::vector<int32_t>& out) const {
    std::vector<Symbol>& sym = scratch.sym;
    sym.clear();
    for (size_t pos = 0; pos < s.size();) {
      const auto len = static_cast<int32_t>(std::min(utf8_len(static_cast<uint8_t>(s[pos])), s.size() - pos));
      const auto idx = static_cast<int32_t>(sym.size());
      sym.push_back({static_cast<int32_t>(pos), len, idx - 1, -1});
      if (idx > 0) sym[idx - 1].next = idx;
      pos += static_cast<size_t>(len);
    }

    std::vector<Candidate>& heap = scratch.heap;
    heap.clear();
    auto try_add = [&](int32_t l, int32_t r) {
      if (l < 0 || r < 0) return;
      const int32_t len = sym[l].len + sym[r].len;
      const int32_t id = v_.find_text_token(s.substr(static_cast<size_t>(sym[l].start), len));
      if (id < 0) return;
      heap.push_back({v_.score[id], l, r, len});
      std::push_heap(heap.begin(), heap.end(), after);
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(sym.size()); ++i) try_add(i, i + 1);

    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), after);
      const Candidate c = heap.back();
      heap.pop_back();
      Symbol& a = sym[c.left];
      Symbol& b = sym[c.right];
      // Lengths only grow until a symbol dies, so an unchanged sum means both are as queued.
      if (a.len == 0 || b.len == 0 || a.len + b.len != c.len) continue;
      a.len += b.len;
      b.len = 0;
      a.next = b.next;
      if (b.next >= 0) sym[b.next].prev = c.left;
      try_add(a.prev, c.left);
      try_add(c.left, a.next);
    }

    for (int32_t i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) {
      const std::string_view piece = s.substr(static_cast<size_t>(sym[i].start), sym[i].len);
      const int32_t id = v_.find_text_token(piece);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      // Byte fallback; a vocab without byte tokens gives <unk> for the character.
      bool all_bytes = true;
      for (char c : piece) all_bytes = all_bytes && v_.byte_token[static_cast<uint8_t>(c)] >= 0;
      if (all_bytes) {
        for (char c : piece) out.push_back(v_.byte_token[static_cast<uint8_t>(c)]);
      } else if (v_.unk >= 0) {
        out.push_back(v_.unk);
      }
    }
  }

  const Vocab& v_;
  std::unique_ptr<std::bitset<kPairBits>> joinable_;  // 512 KiB, so on the heap
};

}  // namespace

std::unique_ptr<Encoder> make_spm_encoder(const Vocab& v) { return std::make_unique<SpmEncoder>(v); }

}  // namespace pl::tok
