// Import of a Hugging Face / GPT-2 style byte-level BPE tokenizer
// (encoder.json or vocab.json + vocab.bpe or merges.txt) into GGUF
// tokenizer.ggml.* metadata, so tests and `make-model` can build models
// with a real vocabulary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pl {

class GgufWriter;

struct HfAddedToken {
  int32_t id = -1;
  std::string content;  // raw text (not byte-level encoded)
  bool special = true;  // true: CONTROL (parsed only with parse_special); false: USER_DEFINED
};

struct HfBpeImportOptions {
  // tokenizer.ggml.pre; must be a name the tokenizer knows (e.g. "llama-bpe", "gpt-2", "qwen2").
  std::string pre = "gpt-2";
  // Tokens beyond (or re-typing entries of) the encoder, e.g. Llama 3's <|begin_of_text|>.
  std::vector<HfAddedToken> added_tokens;
  // Texts of the special tokens. Unset: the family default when that token
  // exists (Llama 3: <|begin_of_text|>, <|end_of_text|>, <|eot_id|>, <|eom_id|>;
  // others: eos = <|endoftext|>). Set but absent from the vocab: an error.
  std::optional<std::string> bos, eos, eot, eom;
  // tokenizer.ggml.add_bos_token / add_eos_token; unset: the pre-tokenizer family's default.
  std::optional<bool> add_bos, add_eos;
};

// encoder_json: a JSON object mapping each byte-level token to its id.
// merges_text: one "left right" merge per line in rank order; an optional
// "#version" first line and blank lines are skipped.
// Writes tokenizer.ggml.{model, pre, tokens, token_type, merges, bos/eos/eot/eom
// ids, add_bos_token, add_eos_token} into `w`. Ids missing between 0 and the
// largest id become UNUSED "[PAD<id>]" tokens. Throws pl::Error naming the file
// part that is wrong (bad JSON, a duplicate id, a merge line without a space...).
void import_hf_bpe(std::string_view encoder_json, std::string_view merges_text, const HfBpeImportOptions& opt,
                   GgufWriter& w);
void import_hf_bpe_files(const std::string& encoder_path, const std::string& merges_path,
                         const HfBpeImportOptions& opt, GgufWriter& w);

// Added tokens from JSON in any of the HF shapes: a tokenizer.json (its
// "added_tokens"), a tokenizer_config.json (its "added_tokens_decoder"), a bare
// array of {"id", "content", "special"}, or a plain {"content": id} object
// (all special).
std::vector<HfAddedToken> parse_hf_added_tokens(std::string_view json);

// The 256 special tokens of Llama 3.1 / 3.2 / 3.3 at ids 128000..128255
// (<|begin_of_text|>, <|end_of_text|>, <|start_header_id|>, <|eot_id|>, ...).
std::vector<HfAddedToken> llama3_special_tokens();

}  // namespace pl
