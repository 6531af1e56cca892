// The model-specific halves of the tokenizer: each turns a run of plain text
// (added tokens already cut out) into ids. Internal to pl_tokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace pl {
class GgufFile;
}

namespace pl::tok {

class Encoder {
 public:
  virtual ~Encoder() = default;
  // at_start: the run begins the text or follows an added token (where SPM
  // puts its dummy-prefix space). `text` is valid UTF-8 and not empty.
  virtual void encode(std::string_view text, bool at_start, std::vector<int32_t>& out) const = 0;
};

// Memo of piece -> ids for one encode call: real text repeats its words, and
// a repeat costs one hash instead of a merge loop. Direct-mapped (a colliding
// piece just replaces the entry), so it never allocates while encoding; the
// keys point into the caller's text, which outlives the call.
class PieceCache {
 public:
  // No cache for short texts, where clearing the table would cost more than it saves.
  explicit PieceCache(size_t text_bytes);
  // Appends the ids `piece` produced earlier in this call and returns true, or returns false.
  bool lookup(std::string_view piece, std::vector<int32_t>& out) const;
  // Records that out[begin, end) are the ids of `piece`.
  void store(std::string_view piece, size_t begin, size_t end);

 private:
  struct Slot {
    std::string_view key;
    uint32_t begin = 0;
    uint32_t len = 0;
  };
  std::vector<Slot> slots_;
};

// Each keeps a reference to `v`, which must outlive it.
std::unique_ptr<Encoder> make_spm_encoder(const Vocab& v);
// Reads tokenizer.ggml.merges; throws pl::Error naming the key when they are missing or malformed.
std::unique_ptr<Encoder> make_bpe_encoder(const Vocab& v, const GgufFile& f);
std::unique_ptr<Encoder> make_wordpiece_encoder(const Vocab& v);

}  // namespace pl::tok
