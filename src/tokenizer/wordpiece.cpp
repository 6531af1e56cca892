// WordPiece for BERT-style embedding models, as the HF BertNormalizer +
// BertPreTokenizer + WordPiece pipeline does it:
//   1. clean: drop NUL, U+FFFD and control/format/unassigned characters (C*,
//      except \t \n \r), map every whitespace character to ' ';
//   2. put spaces around CJK ideographs so each becomes its own word;
//   3. strip accents (NFD, then drop nonspacing marks Mn), then lowercase;
//   4. split on whitespace, and isolate each punctuation character (ASCII
//      punctuation or Unicode P*);
//   5. per word, greedy longest-match-first; a word with no full cover (or
//      over 100 characters) becomes [UNK].
// GGUF stores the vocab in "phantom space" form: a word-initial piece is
// "▁piece", a continuation piece (HF "##piece") is bare.
// ICU supplies normalization, case mapping and character properties.
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include <algorithm>

#include "core/error.h"
#include "tokenizer/encoders.h"
#include "tokenizer/unicode.h"

namespace pl::tok {
namespace {

constexpr size_t kMaxWordChars = 100;

bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_ascii_punct(char32_t c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}

void append_u16(std::u16string& s, char32_t c) {
  if (c < 0x10000) {
    s.push_back(static_cast<char16_t>(c));
  } else {
    s.push_back(static_cast<char16_t>(U16_LEAD(c)));
    s.push_back(static_cast<char16_t>(U16_TRAIL(c)));
  }
}

// Runs an ICU string transform that reports the size it needs on overflow.
template <class F>
std::u16string icu_transform(const std::u16string& src, F&& f, const char* what) {
  std::u16string dst(src.size() + src.size() / 2 + 16, u'\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    UErrorCode err = U_ZERO_ERROR;
    const int32_t n = f(dst.data(), static_cast<int32_t>(dst.size()), &err);
    if (err == U_BUFFER_OVERFLOW_ERROR) {
      dst.assign(static_cast<size_t>(n), u'\0');
      continue;
    }
    if (U_FAILURE(err)) fail("WordPiece normalization ({}) failed: {}", what, u_errorName(err));
    dst.resize(static_cast<size_t>(n));
    return dst;
  }
  fail("WordPiece normalization ({}) failed: output size unstable", what);
}

class WordPieceEncoder final : public Encoder {
 public:
  explicit WordPieceEncoder(const Vocab& v) : v_(v) {
    UErrorCode err = U_ZERO_ERROR;
    nfd_ = unorm2_getNFDInstance(&err);
    if (U_FAILURE(err)) fail("ICU NFD normalizer unavailable: {}", u_errorName(err));
    for (const std::string& t : v.text) max_token_bytes_ = std::max(max_token_bytes_, t.size());
  }

  void encode(std::string_view text, bool /*at_start*/, std::vector<int32_t>& out) const override {
    const std::u16string norm = normalize(text);
    std::string word;
    auto flush = [&] {
      if (!word.empty()) encode_word(word, out);
      word.clear();
    };
    for (int32_t i = 0; i < static_cast<int32_t>(norm.size());) {
      UChar32 c;
      U16_NEXT(norm.data(), i, static_cast<int32_t>(norm.size()), c);
      if (u_isUWhiteSpace(c)) {
        flush();
      } else if (is_ascii_punct(static_cast<char32_t>(c)) || (U_GET_GC_MASK(c) & U_GC_P_MASK) != 0) {
        flush();
        utf8_append(word, static_cast<char32_t>(c));
        flush();
      } else {
        utf8_append(word, static_cast<char32_t>(c));
      }
    }
    flush();
  }

 private:
  std::u16string normalize(std::string_view text) const {
    std::u16string cleaned;
    cleaned.reserve(text.size());
    for (size_t pos = 0; pos < text.size();) {
      const char32_t c = utf8_next(text, pos);
      const bool is_ws_control = c == '\t' || c == '\n' || c == '\r';
      if (c == 0 || c == 0xFFFD || (!is_ws_control && (U_GET_GC_MASK(c) & U_GC_C_MASK) != 0)) continue;
      if (is_ws_control || u_isUWhiteSpace(static_cast<UChar32>(c))) {
        cleaned.push_back(u' ');
      } else if (is_chinese_char(c)) {
        cleaned.push_back(u' ');
        append_u16(cleaned, c);
        cleaned.push_back(u' ');
      } else {
        append_u16(cleaned, c);
      }
    }
    const std::u16string decomposed = icu_transform(
        cleaned,
        [&](UChar* dst, int32_t cap, UErrorCode* err) {
          return unorm2_normalize(nfd_, cleaned.data(), static_cast<int32_t>(cleaned.size()), dst, cap, err);
        },
        "NFD");
    std::u16string stripped;
    stripped.reserve(decomposed.size());
    for (int32_t i = 0; i < static_cast<int32_t>(decomposed.size());) {
      UChar32 c;
      U16_NEXT(decomposed.data(), i, static_cast<int32_t>(decomposed.size()), c);
      if (u_charType(c) != U_NON_SPACING_MARK) append_u16(stripped, static_cast<char32_t>(c));
    }
    return icu_transform(
        stripped,
        [&](UChar* dst, int32_t cap, UErrorCode* err) {
          return u_strToLower(dst, cap, stripped.data(), static_cast<int32_t>(stripped.size()), "", err);
        },
        "lowercase");
  }

  void encode_word(const std::string& word, std::vector<int32_t>& out) const {
    size_t n_chars = 0;
    for (char c : word) n_chars += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
    if (n_chars > kMaxWordChars) {
      emit_unknown(out);
      return;
    }
    const std::string initial = std::string(kSpmSpace) + word;  // word-initial pieces carry the phantom space
    const size_t n_out = out.size();
    for (size_t start = 0; start < word.size();) {
      int32_t found = -1;
      size_t end = std::min(word.size(), start + max_token_bytes_);
      // Step back to a character boundary, then shrink one character at a time.
      while (end < word.size() && (static_cast<uint8_t>(word[end]) & 0xC0) == 0x80) --end;
      for (; end > start; --end) {
        if (end < word.size() && (static_cast<uint8_t>(word[end]) & 0xC0) == 0x80) continue;
        const std::string_view cand = start == 0 ? std::string_view(initial).substr(0, kSpmSpace.size() + end)
                                                 : std::string_view(word).substr(start, end - start);
        if ((found = v_.find_text_token(cand)) >= 0) break;
      }
      if (found < 0) {
        out.resize(n_out);  // no cover: the whole word is unknown
        emit_unknown(out);
        return;
      }
      out.push_back(found);
      start = end;
    }
  }

  void emit_unknown(std::vector<int32_t>& out) const {
    if (v_.unk >= 0) out.push_back(v_.unk);
  }

  const Vocab& v_;
  const UNormalizer2* nfd_ = nullptr;  // owned by ICU
  size_t max_token_bytes_ = 0;
};

}  // namespace

std::unique_ptr<Encoder> make_wordpiece_encoder(const Vocab& v) { return std::make_unique<WordPieceEncoder>(v); }

}  // namespace pl::tok
