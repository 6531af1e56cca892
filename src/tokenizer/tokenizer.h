// Tokenizers built from a model's GGUF metadata (tokenizer.ggml.*):
//   - Spm       ("llama"): SentencePiece BPE over scores, byte fallback (<0xXX>),
//                          whitespace as U+2581 and a dummy-prefix space.
//   - Bpe       ("gpt2"):  byte-level BPE over merge ranks, after the regex
//                          pre-tokenizer named by tokenizer.ggml.pre.
//   - WordPiece ("bert"):  BERT normalization (lowercase, accents stripped,
//                          punctuation and CJK split), greedy longest match.
//
// Special tokens. Before the model-specific algorithm runs, the text is cut at
// added tokens, leftmost-longest: USER_DEFINED tokens are always cut out (they
// are plain added words such as runs of spaces, and the reference tokenizers
// match them in every text), CONTROL (and UNKNOWN-typed) tokens only when
// parse_special is true (chat prompts); with parse_special false their text is
// tokenized like any other text (user content cannot forge "<|im_start|>").
//
// Bad input: text that is not valid UTF-8 has each maximal ill-formed byte
// sequence replaced by U+FFFD before tokenization (the reference tokenizers
// also see U+FFFD there); an empty text gives no tokens (plus BOS/EOS when
// asked). Out-of-range ids passed to decode throw pl::Error.
//
// A Tokenizer is immutable after from_gguf and cheap to copy (shared state);
// all methods are safe to call from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pl {

class GgufFile;

enum class TokenizerKind { Spm, Bpe, WordPiece };

// tokenizer.ggml.token_type values, numbered as in the file.
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

namespace tok {
struct Model;
}

class Tokenizer {
 public:
  // Throws pl::Error naming the key for missing, malformed or unsupported
  // metadata (unknown tokenizer.ggml.model or tokenizer.ggml.pre, a special
  // token id out of range, arrays of mismatched length, a bad merge).
  // A missing or "default" pre on a gpt2 vocab means the GPT-2 regex split.
  static Tokenizer from_gguf(const GgufFile& f);

  // add_special: prepend BOS (CLS for WordPiece) and append EOS/SEP as the
  // metadata (or the per-model default) says. Throws pl::Error only for a
  // text of 2 GiB or more.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // Text of a whole sequence decoded from its start: byte tokens become raw
  // bytes, byte-level BPE symbols their bytes, U+2581 a space, and for SPM
  // (with the dummy prefix on) and WordPiece the leading space is removed.
  // CONTROL/UNKNOWN tokens render as nothing unless render_special. The result
  // is the exact byte string (it may contain invalid UTF-8 if the ids do);
  // StreamDecoder is the UTF-8-safe incremental form.
  std::string decode(std::span<const int32_t> ids, bool render_special = false) const;
  // Raw bytes of one token, no leading-space handling; may be part of a UTF-8 character.
  std::string token_to_piece(int32_t id, bool render_special = false) const;
  // Whether decode() drops one leading space of the first piece (SPM dummy prefix, WordPiece).
  bool strips_leading_space() const;

  int32_t n_vocab() const;
  // Special token ids, -1 when the model has none.
  int32_t bos() const;  // for WordPiece: [CLS]
  int32_t eos() const;
  int32_t eot() const;  // end of turn (tokenizer.ggml.eot_token_id, or found by its text)
  int32_t eom() const;  // end of message (Llama 3.1 <|eom_id|>)
  int32_t unk() const;
  int32_t sep() const;  // WordPiece [SEP]
  int32_t pad() const;
  bool add_bos() const;
  bool add_eos() const;
  bool add_sep() const;

  // End of generation: eos, eot, eom, and added tokens whose text is a known
  // end-of-turn marker (<|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>, ...).
  bool is_eog(int32_t id) const;
  const std::vector<int32_t>& eog_ids() const;

  const std::string& token_text(int32_t id) const;  // as stored in the GGUF; throws when out of range
  TokenType token_type(int32_t id) const;
  int32_t find_token(std::string_view text) const;  // exact stored text -> id, -1 when absent

  TokenizerKind kind() const;
  const std::string& pre() const;  // tokenizer.ggml.pre as stored ("" when absent)

 private:
  Tokenizer() = default;  // only from_gguf makes one, so a Tokenizer is never empty
  std::shared_ptr<const tok::Model> m_;
};

}  // namespace pl
