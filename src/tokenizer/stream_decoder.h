// Incremental detokenization for streaming generated text: push ids one at a
// time and get back only complete UTF-8. A token that ends inside a character
// (byte-fallback <0xXX> tokens, byte-level BPE pieces of an emoji) leaves its
// partial bytes held until the character completes. Bytes that can no longer
// form a valid character are emitted as U+FFFD as soon as that is certain,
// never held; flush() emits whatever is still held (an unfinished character
// becomes one U+FFFD). So the concatenated output is always valid UTF-8.
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

namespace pl {

class StreamDecoder {
 public:
  // strip_leading_space: drop the leading space of the first non-empty piece,
  // as decode() does, for a stream that starts a sequence (SPM's dummy prefix).
  // A stream continuing after a prompt keeps that space: it is real text.
  explicit StreamDecoder(Tokenizer tok, bool strip_leading_space = false, bool render_special = false);

  // Throws pl::Error for an out-of-range id (the held bytes are kept).
  std::string push(int32_t id);
  std::string flush();
  // Bytes currently held back (0..3).
  size_t n_pending() const { return pending_.size(); }

 private:
  Tokenizer tok_;
  bool strip_leading_space_;
  bool render_special_;
  std::string pending_;  // an incomplete but so far valid UTF-8 sequence
};

}  // namespace pl
