#include "tokenizer/vocab.h"

#include <algorithm>
#include <optional>

#include "core/error.h"
#include "gguf/gguf.h"
#include "tokenizer/bpe_pretokenize.h"
#include "tokenizer/unicode.h"

namespace pl::tok {

void SpecialMatcher::add(std::string_view text, int32_t id, bool always) {
  if (text.empty()) return;
  int32_t node = 0;
  for (char ch : text) {
    const auto b = static_cast<uint8_t>(ch);
    auto& kids = nodes_[node].children;
    auto it = std::lower_bound(kids.begin(), kids.end(), b,
                               [](const std::pair<uint8_t, int32_t>& e, uint8_t x) { return e.first < x; });
    if (it != kids.end() && it->first == b) {
      node = it->second;
    } else {
      const auto child = static_cast<int32_t>(nodes_.size());
      kids.insert(it, {b, child});
      nodes_.emplace_back();  // may reallocate: `kids` is not used after this
      node = child;
    }
  }
  Node& n = nodes_[node];
  // On duplicate texts the lowest id wins, as the first-added token does in the reference.
  if (n.id_special < 0) n.id_special = id;
  if (always && n.id_always < 0) n.id_always = id;
  first_byte_[static_cast<uint8_t>(text[0])] = true;
}

std::pair<int32_t, size_t> SpecialMatcher::match(std::string_view text, size_t pos, bool parse_special) const {
  if (!first_byte_[static_cast<uint8_t>(text[pos])]) return {-1, 0};
  int32_t node = 0;
  std::pair<int32_t, size_t> best{-1, 0};
  for (size_t i = pos; i < text.size(); ++i) {
    const auto b = static_cast<uint8_t>(text[i]);
    const auto& kids = nodes_[node].children;
    auto it = std::lower_bound(kids.begin(), kids.end(), b,
                               [](const std::pair<uint8_t, int32_t>& e, uint8_t x) { return e.first < x; });
    if (it == kids.end() || it->first != b) break;
    node = it->second;
    const int32_t id = parse_special ? nodes_[node].id_special : nodes_[node].id_always;
    if (id >= 0) best = {id, i + 1 - pos};
  }
  return best;
}

namespace {

constexpr std::string_view kKeyModel = "tokenizer.ggml.model";
constexpr std::string_view kKeyPre = "tokenizer.ggml.pre";
constexpr std::string_view kKeyTokens = "tokenizer.ggml.tokens";
constexpr std::string_view kKeyScores = "tokenizer.ggml.scores";
constexpr std::string_view kKeyTypes = "tokenizer.ggml.token_type";

// Texts that mark the end of a turn, in the order we prefer one as eot when
// the metadata names none (a Qwen vocab has both <|im_end|> and <|endoftext|>).
constexpr std::string_view kEotTexts[] = {
    "<|eot_id|>",    "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>",         "_<EOT>",     "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
    "<end_of_utterance>",
};
// Every text that ends generation when it is an added token.
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>", "</s>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
};

bool is_added_type(TokenType t) {
  return t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown;
}

// "<0xAB>" -> 0xAB, or -1.
int parse_byte_token(std::string_view s) {
  if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return -1;
  int v = 0;
  for (char c : s.substr(3, 2)) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

// A special token id. Converters write -1 (or its unsigned form, 0xFFFFFFFF)
// for "no such token"; any other id outside the vocab is an error.
std::optional<int32_t> read_id(const GgufFile& f, std::string_view key, int32_t n_vocab) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return std::nullopt;
  if ((v->type() == GgufType::UINT32 && std::get<uint32_t>(v->v) == UINT32_MAX) ||
      (v->type() == GgufType::UINT64 && std::get<uint64_t>(v->v) == UINT64_MAX))
    return std::nullopt;
  const auto id = f.get<int64_t>(key);
  if (id == -1) return std::nullopt;
  if (id < 0 || id >= n_vocab) fail("metadata key '{}': token id {} is out of range [0, {})", key, id, n_vocab);
  return static_cast<int32_t>(id);
}

// A flag that, when set in the metadata, must have its token.
void check_flag_token(bool flag, bool from_metadata, int32_t id, std::string_view flag_key,
                      std::string_view id_key, bool& out) {
  if (flag && id < 0) {
    if (from_metadata) fail("metadata key '{}' is true but the vocab has no such token ('{}')", flag_key, id_key);
    out = false;  // a per-model default that this vocab cannot honour
  }
}

void read_flags(const GgufFile& f, Vocab& v) {
  // Per-model defaults, overridden by the metadata when present.
  bool add_bos = false, add_eos = false, add_sep = false;
  switch (v.kind) {
    case TokenizerKind::Spm:
      add_bos = true;
      v.add_space_prefix = true;
      break;
    case TokenizerKind::Bpe: {
      const PreTokenizerSpec* spec = find_pre_tokenizer(v.pre);
      PL_CHECK(spec != nullptr, "pre '{}' validated before", v.pre);
      add_bos = spec->add_bos;
      add_sep = spec->add_sep;
      break;
    }
    case TokenizerKind::WordPiece:
      add_bos = true;  // [CLS] ... [SEP]
      add_sep = true;
      break;
  }
  const auto bos_md = f.get_opt<bool>("tokenizer.ggml.add_bos_token");
  const auto eos_md = f.get_opt<bool>("tokenizer.ggml.add_eos_token");
  const auto sep_md = f.get_opt<bool>("tokenizer.ggml.add_sep_token");
  v.add_bos = bos_md.value_or(add_bos);
  v.add_eos = eos_md.value_or(add_eos);
  v.add_sep = sep_md.value_or(add_sep);
  check_flag_token(v.add_bos, bos_md.has_value(), v.bos, "tokenizer.ggml.add_bos_token",
                   "tokenizer.ggml.bos_token_id", v.add_bos);
  check_flag_token(v.add_eos, eos_md.has_value(), v.eos, "tokenizer.ggml.add_eos_token",
                   "tokenizer.ggml.eos_token_id", v.add_eos);
  check_flag_token(v.add_sep, sep_md.has_value(), v.sep, "tokenizer.ggml.add_sep_token",
                   "tokenizer.ggml.seperator_token_id", v.add_sep);
  v.add_space_prefix = f.get_or<bool>("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
  v.remove_extra_spaces = f.get_or<bool>("tokenizer.ggml.remove_extra_whitespaces", false);
}

void read_special_ids(const GgufFile& f, Vocab& v) {
  const int32_t n = v.n();
  v.bos = read_id(f, "tokenizer.ggml.bos_token_id", n).value_or(-1);
  if (v.kind == TokenizerKind::WordPiece) {
    if (auto cls = read_id(f, "tokenizer.ggml.cls_token_id", n)) v.bos = *cls;
  }
  v.eos = read_id(f, "tokenizer.ggml.eos_token_id", n).value_or(-1);
  v.eot = read_id(f, "tokenizer.ggml.eot_token_id", n).value_or(-1);
  v.eom = read_id(f, "tokenizer.ggml.eom_token_id", n).value_or(-1);
  v.unk = read_id(f, "tokenizer.ggml.unknown_token_id", n).value_or(-1);
  v.sep = read_id(f, "tokenizer.ggml.seperator_token_id", n).value_or(-1);
  // Padding is never used to tokenize, and some converters write n_vocab for "none".
  try {
    v.pad = read_id(f, "tokenizer.ggml.padding_token_id", n).value_or(-1);
  } catch (const Error&) {
    v.pad = -1;
  }

  auto find_added = [&](std::string_view s) {
    const int32_t id = v.find(s);
    return id >= 0 && is_added_type(v.type[id]) ? id : -1;
  };
  if (v.unk < 0) {
    auto it = std::find(v.type.begin(), v.type.end(), TokenType::Unknown);
    if (it != v.type.end()) v.unk = static_cast<int32_t>(it - v.type.begin());
  }
  if (v.eot < 0) {
    for (std::string_view s : kEotTexts) {
      if ((v.eot = find_added(s)) >= 0) break;
    }
  }
  if (v.eom < 0) v.eom = find_added("<|eom_id|>");

  for (int32_t id : {v.eos, v.eot, v.eom}) {
    if (id >= 0) v.eog.push_back(id);
  }
  for (std::string_view s : kEogTexts) {
    if (int32_t id = find_added(s); id >= 0) v.eog.push_back(id);
  }
  std::sort(v.eog.begin(), v.eog.end());
  v.eog.erase(std::unique(v.eog.begin(), v.eog.end()), v.eog.end());
}

}  // namespace

void build_pieces(Vocab& v) {
  const int32_t n = v.n();
  v.piece.assign(static_cast<size_t>(n), {});
  for (int32_t id = 0; id < n; ++id) {
    const std::string& t = v.text[id];
    std::string& p = v.piece[id];
    switch (v.type[id]) {
      case TokenType::Byte: {
        const int b = parse_byte_token(t);
        p = b >= 0 ? std::string(1, static_cast<char>(b)) : t;
        continue;
      }
      case TokenType::Control:
      case TokenType::Unknown:
      case TokenType::UserDefined:
        p = t;  // added tokens are stored as raw text
        continue;
      default:
        break;
    }
    if (v.kind == TokenizerKind::Bpe) {
      // Byte-level symbols back to bytes; anything outside that alphabet is kept as is.
      size_t pos = 0;
      while (pos < t.size()) {
        const size_t start = pos;
        const char32_t cp = utf8_next(t, pos);
        const int b = unicode_to_byte(cp);
        if (b >= 0) {
          p.push_back(static_cast<char>(b));
        } else {
          p.append(t, start, pos - start);
        }
      }
    } else {
      size_t pos = 0;
      while (pos < t.size()) {
        if (t.compare(pos, kSpmSpace.size(), kSpmSpace) == 0) {
          p.push_back(' ');
          pos += kSpmSpace.size();
        } else {
          p.push_back(t[pos++]);
        }
      }
    }
  }
}

Vocab load_vocab(const GgufFile& f) {
  Vocab v;
  v.model = f.get<std::string>(kKeyModel);
  if (v.model == "llama") {
    v.kind = TokenizerKind::Spm;
  } else if (v.model == "gpt2") {
    v.kind = TokenizerKind::Bpe;
  } else if (v.model == "bert") {
    v.kind = TokenizerKind::WordPiece;
  } else {
    fail("metadata key '{}': unsupported tokenizer model '{}' (supported: llama, gpt2, bert)", kKeyModel, v.model);
  }
  v.pre = f.get_or<std::string>(kKeyPre, "");
  if (v.kind == TokenizerKind::Bpe && find_pre_tokenizer(v.pre) == nullptr) {
    fail("metadata key '{}': unknown pre-tokenizer '{}' for a gpt2 vocab (known: {})", kKeyPre, v.pre,
         known_pre_tokenizer_names());
  }

  v.text = f.get_array<std::string>(kKeyTokens);
  if (v.text.empty()) fail("metadata key '{}': the vocabulary is empty", kKeyTokens);
  if (v.text.size() > static_cast<size_t>(INT32_MAX)) fail("metadata key '{}': too many tokens", kKeyTokens);
  const int32_t n = v.n();

  if (f.has(kKeyScores)) {
    v.score = f.get_array<float>(kKeyScores);
    if (v.score.size() != v.text.size())
      fail("metadata key '{}': {} scores for {} tokens", kKeyScores, v.score.size(), v.text.size());
  } else {
    v.score.assign(v.text.size(), 0.0f);
  }

  v.type.assign(v.text.size(), TokenType::Normal);
  if (f.has(kKeyTypes)) {
    const auto types = f.get_array<int32_t>(kKeyTypes);
    if (types.size() != v.text.size())
      fail("metadata key '{}': {} types for {} tokens", kKeyTypes, types.size(), v.text.size());
    for (int32_t id = 0; id < n; ++id) {
      if (types[id] < 0 || types[id] > static_cast<int32_t>(TokenType::Byte))
        fail("metadata key '{}': token {} has unknown type {}", kKeyTypes, id, types[id]);
      v.type[id] = static_cast<TokenType>(types[id]);
    }
  }

  v.text_index.build(v.text, [](int32_t) { return true; });
  v.byte_token.fill(-1);
  const bool has_types = f.has(kKeyTypes);
  for (int32_t id = 0; id < n; ++id) {
    const std::string& t = v.text[id];
    if (t.empty()) continue;  // cannot be matched; decodes to nothing
    if (v.type[id] == TokenType::Byte || (!has_types && v.kind == TokenizerKind::Spm)) {
      const int b = parse_byte_token(t);
      if (b >= 0 && v.byte_token[b] < 0) {
        v.byte_token[b] = id;
        v.type[id] = TokenType::Byte;
      }
    }
  }

  read_special_ids(f, v);
  read_flags(f, v);

  for (int32_t id = 0; id < n; ++id) {
    if (is_added_type(v.type[id])) v.specials.add(v.text[id], id, v.type[id] == TokenType::UserDefined);
  }
  build_pieces(v);
  return v;
}

}  // namespace pl::tok
