#include "tokenizer/unicode.h"

#include <algorithm>

namespace pl::tok {
namespace {

// Length of the well-formed prefix of the sequence starting at s[0] as it
// stands: returns {n, complete}. n == 0 means s[0] cannot start a sequence.
// The second byte's range depends on the lead byte (this is what excludes
// overlong forms, surrogates and code points above U+10FFFF).
struct SeqCheck {
  size_t n_valid;  // bytes that are a valid (possibly incomplete) prefix
  size_t n_need;   // total bytes the lead byte asks for
};

SeqCheck check_seq(std::string_view s) {
  const auto b0 = static_cast<uint8_t>(s[0]);
  if (b0 < 0x80) return {1, 1};
  size_t need = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {0, 1};
  }
  size_t n = 1;
  while (n < need && n < s.size()) {
    const auto b = static_cast<uint8_t>(s[n]);
    const bool ok = n == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) break;
    ++n;
  }
  return {n, need};
}

}  // namespace

size_t utf8_append_valid(std::string_view in, std::string& out, bool final) {
  size_t i = 0;
  while (i < in.size()) {
    // Fast path for ASCII runs, which dominate real text.
    size_t j = i;
    while (j < in.size() && static_cast<uint8_t>(in[j]) < 0x80) ++j;
    if (j > i) {
      out.append(in.data() + i, j - i);
      i = j;
      continue;
    }
    const SeqCheck c = check_seq(in.substr(i));
    if (c.n_valid == c.n_need) {
      out.append(in.data() + i, c.n_valid);
      i += c.n_valid;
    } else if (c.n_valid > 0 && i + c.n_valid == in.size() && !final) {
      break;  // a valid but unfinished sequence at the end: wait for more bytes
    } else {
      out.append(kReplacementChar);
      i += c.n_valid > 0 ? c.n_valid : 1;
    }
  }
  return i;
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const SeqCheck c = check_seq(s.substr(i));
    if (c.n_valid == 0 || c.n_valid != c.n_need) return false;
    i += c.n_valid;
  }
  return true;
}

char32_t utf8_next(std::string_view s, size_t& pos) {
  const auto b0 = static_cast<uint8_t>(s[pos]);
  const size_t n = std::min(utf8_len(b0), s.size() - pos);
  char32_t cp = n == 1 ? b0 : n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[pos + k]) & 0x3F);
  pos += n;
  return cp;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

bool byte_is_self_mapped(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct ByteTables {
  std::array<std::string, 256> to_unicode;
  std::array<int16_t, 0x144> from_unicode;  // code points used are all < U+0144

  ByteTables() {
    from_unicode.fill(-1);
    int n_shifted = 0;
    for (int b = 0; b < 256; ++b) {
      const char32_t cp = byte_is_self_mapped(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n_shifted++);
      utf8_append(to_unicode[b], cp);
      from_unicode[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteTables& byte_tables() {
  static const ByteTables t;
  return t;
}

}  // namespace

const std::array<std::string, 256>& byte_to_unicode() { return byte_tables().to_unicode; }

int unicode_to_byte(char32_t cp) {
  const auto& t = byte_tables().from_unicode;
  return cp < t.size() ? t[cp] : -1;
}

}  // namespace pl::tok
