#include "tokenizer/stream_decoder.h"

#include <utility>

#include "tokenizer/unicode.h"

namespace pl {

StreamDecoder::StreamDecoder(Tokenizer tok, bool strip_leading_space, bool render_special)
    : tok_(std::move(tok)), strip_leading_space_(strip_leading_space), render_special_(render_special) {}

std::string StreamDecoder::push(int32_t id) {
  std::string piece = tok_.token_to_piece(id, render_special_);
  if (piece.empty()) return {};
  if (strip_leading_space_) {
    if (piece.front() == ' ') piece.erase(0, 1);
    strip_leading_space_ = false;
  }
  pending_ += piece;
  std::string out;
  const size_t used = tok::utf8_append_valid(pending_, out, /*final=*/false);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  tok::utf8_append_valid(pending_, out, /*final=*/true);
  pending_.clear();
  return out;
}

}  // namespace pl
