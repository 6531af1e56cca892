// UTF-8 helpers shared by the tokenizers and the streaming decoder, and the
// GPT-2 byte<->unicode mapping of byte-level BPE. Internal to pl_tokenizer.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pl::tok {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD
inline constexpr std::string_view kSpmSpace = "\xE2\x96\x81";          // U+2581 '▁'

// Copies the well-formed UTF-8 in `in` to `out`, writing one U+FFFD for each
// maximal ill-formed subpart (the Unicode "best practice" policy, which is also
// what browsers and Python's errors="replace" do). When `final` is false an
// incomplete but so-far valid sequence at the very end is not consumed, so the
// caller can hold it until more bytes arrive. Returns the bytes consumed.
size_t utf8_append_valid(std::string_view in, std::string& out, bool final);

inline std::string sanitize_utf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  utf8_append_valid(in, out, true);
  return out;
}

bool is_valid_utf8(std::string_view s);

// Byte length of the sequence a lead byte starts (1 for ASCII and for bytes
// that cannot lead, so a scan over sanitized text always advances).
inline size_t utf8_len(uint8_t lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

// Decodes the code point at `pos` of well-formed UTF-8 and advances `pos`.
char32_t utf8_next(std::string_view s, size_t& pos);
void utf8_append(std::string& out, char32_t cp);

// GPT-2's byte-level alphabet: every byte maps to a printable code point
// (printable Latin-1 bytes to themselves, the other 68 to U+0100..U+0143 in
// byte order), so any byte string becomes a string of "visible" characters.
const std::array<std::string, 256>& byte_to_unicode();
// Inverse of byte_to_unicode(); -1 for code points outside the alphabet.
int unicode_to_byte(char32_t cp);

}  // namespace pl::tok
