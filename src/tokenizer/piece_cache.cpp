#include <algorithm>
#include <bit>
#include <functional>

#include "tokenizer/encoders.h"

namespace pl::tok {

PieceCache::PieceCache(size_t text_bytes) {
  if (text_bytes < 1024) return;
  slots_.resize(std::bit_ceil(std::min<size_t>(8192, text_bytes / 8)));
}

bool PieceCache::lookup(std::string_view piece, std::vector<int32_t>& out) const {
  if (slots_.empty()) return false;
  const Slot& s = slots_[std::hash<std::string_view>{}(piece) & (slots_.size() - 1)];
  if (s.len == 0 || s.key != piece) return false;
  // Copy by index through a local: push_back may reallocate `out`, which also
  // holds the source. (No reserve here: an exact reserve per hit is quadratic.)
  for (uint32_t i = 0; i < s.len; ++i) {
    const int32_t id = out[s.begin + i];
    out.push_back(id);
  }
  return true;
}

void PieceCache::store(std::string_view piece, size_t begin, size_t end) {
  if (slots_.empty() || end <= begin || end > UINT32_MAX) return;
  slots_[std::hash<std::string_view>{}(piece) & (slots_.size() - 1)] = {piece, static_cast<uint32_t>(begin),
                                                                        static_cast<uint32_t>(end - begin)};
}

}  // namespace pl::tok
