// Byte-level BPE pre-tokenizers: the regex split each model family was trained
// with, selected by tokenizer.ggml.pre, and the PCRE2 engine that runs them.
// Internal to pl_tokenizer.
#pragma once

#include <string>
#include <string_view>
#include <vector>

struct pcre2_real_code_8;

namespace pl::tok {

struct PreTokenizerSpec {
  std::string_view family;  // canonical name, for messages
  // Applied in order; each one splits every piece the previous ones produced
  // into its matches and the gaps between them (both are kept).
  std::vector<std::string_view> regexes;
  bool ignore_merges = false;  // a pre-token that is itself a token is emitted whole (Llama 3)
  bool add_bos = false;        // default of tokenizer.ggml.add_bos_token
  bool add_sep = false;        // default of tokenizer.ggml.add_sep_token (RoBERTa-style embedders)
};

// nullptr for an unknown name. "" and "default" give the GPT-2 split.
const PreTokenizerSpec* find_pre_tokenizer(std::string_view pre);
// Every accepted name, comma-separated (for the unknown-pre error).
std::string known_pre_tokenizer_names();

class RegexSplitter {
 public:
  // Compiles with UTF + UCP and JIT; throws pl::Error if a pattern does not compile.
  explicit RegexSplitter(const std::vector<std::string_view>& patterns);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // Appends the pieces of `text` (valid UTF-8) to `pieces`, in order; they
  // concatenate back to `text`. Throws pl::Error if the regex engine fails
  // (resource limits), never returns a partial split silently.
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

 private:
  std::vector<pcre2_real_code_8*> codes_;
};

}  // namespace pl::tok
