// Byte-level BPE: regex pre-tokenization, then per pre-token the classic
// merge loop (lowest rank first, leftmost on ties) over a linked list of
// symbols with a binary heap of candidate pairs: O(n log n) per pre-token.
// Symbols are token ids from the start (each byte's byte-level character is a
// token), so a merge is one hash probe on an (id, id) pair, with no strings built.
#include <algorithm>
#include <bit>

#include "core/error.h"
#include "gguf/gguf.h"
#include "tokenizer/bpe_pretokenize.h"
#include "tokenizer/encoders.h"
#include "tokenizer/unicode.h"

namespace pl::tok {
namespace {

constexpr std::string_view kKeyMerges = "tokenizer.ggml.merges";

// (left id, right id) -> (rank, merged id). Open addressing with linear
// probing over one array of 16-byte slots, so a probe touches one cache line;
// built once at load, read-only afterwards.
class MergeTable {
 public:
  struct Value {
    int32_t rank = -1;
    int32_t merged = -1;
  };

  void reserve(size_t n) {
    const size_t cap = std::bit_ceil(std::max<size_t>(16, n * 2));
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
  }

  // Keeps the first (lowest-rank) entry for a pair.
  void insert(int32_t left, int32_t right, Value v) {
    const uint64_t k = key(left, right);
    for (size_t i = slot(k);; i = (i + 1) & mask_) {
      if (slots_[i].key == k) return;
      if (slots_[i].key == kEmpty) {
        slots_[i] = {k, v};
        return;
      }
    }
  }

  const Value* find(int32_t left, int32_t right) const {
    const uint64_t k = key(left, right);
    for (size_t i = slot(k);; i = (i + 1) & mask_) {
      if (slots_[i].key == k) return &slots_[i].value;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // ids are < 2^31, so never a real key
  struct Slot {
    uint64_t key = kEmpty;
    Value value;
  };
  static uint64_t key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  size_t slot(uint64_t k) const { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> 29) & mask_; }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

class BpeEncoder final : public Encoder {
 public:
  BpeEncoder(const Vocab& v, const GgufFile& f, const PreTokenizerSpec& spec)
      : v_(v), splitter_(spec.regexes), ignore_merges_(spec.ignore_merges) {
    const auto& b2u = byte_to_unicode();
    for (int b = 0; b < 256; ++b) byte_id_[b] = v.find_text_token(b2u[b]);
    load_merges(f);
    if (ignore_merges_) {
      // Whole pre-tokens are looked up by their raw bytes, which saves
      // re-encoding every pre-token into the byte-level alphabet.
      raw_index_.build(v.piece, [&](int32_t id) {
        return v.type[id] == TokenType::Normal || v.type[id] == TokenType::Undefined;
      });
    }
  }

  void encode(std::string_view text, bool /*at_start*/, std::vector<int32_t>& out) const override {
    std::vector<std::string_view> pieces;
    splitter_.split(text, pieces);
    Scratch s;
    PieceCache cache(text.size());
    for (std::string_view p : pieces) {
      if (p.size() > 1 && cache.lookup(p, out)) continue;
      const size_t begin = out.size();
      encode_piece(p, s, out);
      if (p.size() > 1) cache.store(p, begin, out.size());
    }
  }

 private:
  struct Symbol {
    int32_t id;    // token id, or -1 for a byte with no token
    int32_t prev;  // index, -1 at the start
    int32_t next;  // index, -1 at the end
  };
  struct Candidate {
    int32_t rank;
    int32_t left;  // symbol index; the pair is (left, symbols[left].next)
    int32_t left_id;
    int32_t right_id;
    int32_t merged;
  };
  struct Scratch {
    std::vector<Symbol> symbols;
    std::vector<Candidate> heap;
  };
  // Heap order: lowest rank on top, then leftmost.
  static bool after(const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
  }

  void load_merges(const GgufFile& f) {
    if (!f.has(kKeyMerges)) fail("metadata key '{}' is missing (a gpt2 vocab needs its merges)", kKeyMerges);
    const auto merges = f.get_array<std::string>(kKeyMerges);
    merges_.reserve(merges.size());
    std::string joined;
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const std::string& m = merges[rank];
      // The separator is the first space after the first character, so a
      // left part may itself be a space in vocabularies that store raw spaces.
      const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
      if (sp == std::string::npos || sp + 1 >= m.size())
        fail("metadata key '{}': merge {} is not \"left right\": '{}'", kKeyMerges, rank, m);
      const std::string_view left(m.data(), sp), right(m.data() + sp + 1, m.size() - sp - 1);
      joined.assign(left).append(right);
      const int32_t l = v_.find_text_token(left), r = v_.find_text_token(right), j = v_.find_text_token(joined);
      // Symbols are always tokens here, so a merge whose parts or result are
      // not tokens can never produce one; well-formed vocabularies have none.
      if (l < 0 || r < 0 || j < 0) continue;
      merges_.insert(l, r, {static_cast<int32_t>(rank), j});
    }
  }

  void push_candidate(Scratch& s, int32_t left) const {
    if (left < 0) return;
    const Symbol& a = s.symbols[left];
    if (a.next < 0 || a.id < 0) return;
    const Symbol& b = s.symbols[a.next];
    if (b.id < 0) return;
    const MergeTable::Value* m = merges_.find(a.id, b.id);
    if (m == nullptr) return;
    s.heap.push_back({m->rank, left, a.id, b.id, m->merged});
    std::push_heap(s.heap.begin(), s.heap.end(), after);
  }

  // A byte without a byte-level token (vocabularies trained only on valid
  // UTF-8 often lack 0xC0, 0xC1, 0xF5..0xFF and some control bytes) is
  // dropped, as the reference tokenizers do: their "unk" is often a control
  // token such as <|endoftext|>, which must never appear inside user text.
  static void emit_unknown(std::vector<int32_t>& /*out*/) {}

  void encode_piece(std::string_view piece, Scratch& s, std::vector<int32_t>& out) const {
    if (ignore_merges_) {
      if (const int32_t id = raw_index_.find(piece, v_.piece); id >= 0) {
        out.push_back(id);
        return;
      }
    }
    const auto n = static_cast<int32_t>(piece.size());
    if (n == 1) {
      const int32_t id = byte_id_[static_cast<uint8_t>(piece[0])];
      id >= 0 ? out.push_back(id) : emit_unknown(out);
      return;
    }
    s.symbols.resize(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) {
      s.symbols[i] = {byte_id_[static_cast<uint8_t>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1};
    }
    s.heap.clear();
    for (int32_t i = 0; i + 1 < n; ++i) push_candidate(s, i);

    while (!s.heap.empty()) {
      std::pop_heap(s.heap.begin(), s.heap.end(), after);
      const Candidate c = s.heap.back();
      s.heap.pop_back();
      Symbol& a = s.symbols[c.left];
      // Stale when either side has changed since it was queued. Ids only grow
      // into longer tokens at a fixed start, so equal ids mean equal spans.
      if (a.id != c.left_id || a.next < 0 || s.symbols[a.next].id != c.right_id) continue;
      Symbol& b = s.symbols[a.next];
      a.id = c.merged;
      b.id = -2;  // dead
      a.next = b.next;
      if (b.next >= 0) s.symbols[b.next].prev = c.left;
      push_candidate(s, a.prev);
      push_candidate(s, c.left);
    }
    for (int32_t i = 0; i >= 0; i = s.symbols[i].next) {
      const int32_t id = s.symbols[i].id;
      id >= 0 ? out.push_back(id) : emit_unknown(out);
    }
  }

  const Vocab& v_;
  RegexSplitter splitter_;
  bool ignore_merges_;
  std::array<int32_t, 256> byte_id_{};  // token of each byte's byte-level character, -1 when absent
  MergeTable merges_;
  TextIndex raw_index_;  // decoded bytes -> NORMAL token (only with ignore_merges)
};

}  // namespace

std::unique_ptr<Encoder> make_bpe_encoder(const Vocab& v, const GgufFile& f) {
  const PreTokenizerSpec* spec = find_pre_tokenizer(v.pre);
  PL_CHECK(spec != nullptr, "pre '{}' is validated by load_vocab", v.pre);
  return std::make_unique<BpeEncoder>(v, f, *spec);
}

}  // namespace pl::tok
