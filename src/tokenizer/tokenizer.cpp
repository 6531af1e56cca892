#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "gguf/gguf.h"
#include "tokenizer/encoders.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace pl {
namespace tok {

struct Model {
  Vocab vocab;
  std::unique_ptr<Encoder> encoder;  // refers to `vocab`, so a Model never moves once built
};

}  // namespace tok

Tokenizer Tokenizer::from_gguf(const GgufFile& f) {
  auto m = std::make_shared<tok::Model>();
  m->vocab = with_file_context(f.path(), [&] { return tok::load_vocab(f); });
  switch (m->vocab.kind) {
    case TokenizerKind::Spm:
      m->encoder = tok::make_spm_encoder(m->vocab);
      break;
    case TokenizerKind::Bpe:
      m->encoder = with_file_context(f.path(), [&] { return tok::make_bpe_encoder(m->vocab, f); });
      break;
    case TokenizerKind::WordPiece:
      m->encoder = tok::make_wordpiece_encoder(m->vocab);
      break;
  }
  Tokenizer t;
  t.m_ = std::move(m);
  return t;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const tok::Vocab& v = m_->vocab;
  // Offsets inside the tokenizers are 32-bit; no prompt comes near this.
  if (text.size() >= (size_t{1} << 31)) fail("text of {} bytes is too long to tokenize", text.size());
  std::string sanitized;
  if (!tok::is_valid_utf8(text)) {
    sanitized = tok::sanitize_utf8(text);
    text = sanitized;
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && v.add_bos) out.push_back(v.bos);

  // Cut out added tokens, leftmost-longest, and hand the text between them to the model.
  bool at_start = true;
  size_t run_begin = 0;
  auto flush_run = [&](size_t end) {
    if (end > run_begin) {
      m_->encoder->encode(text.substr(run_begin, end - run_begin), at_start, out);
      at_start = false;
    }
  };
  if (!v.specials.empty()) {
    for (size_t pos = 0; pos < text.size();) {
      if (!v.specials.may_start(static_cast<uint8_t>(text[pos]))) {
        ++pos;
        continue;
      }
      const auto [id, len] = v.specials.match(text, pos, parse_special);
      if (id < 0) {
        ++pos;
        continue;
      }
      flush_run(pos);
      out.push_back(id);
      at_start = true;
      pos += len;
      run_begin = pos;
    }
  }
  flush_run(text.size());

  if (add_special && v.add_sep) out.push_back(v.sep);
  if (add_special && v.add_eos) out.push_back(v.eos);
  return out;
}

namespace {

void check_id(const tok::Vocab& v, int32_t id) {
  if (id < 0 || id >= v.n()) fail("token id {} is out of range [0, {})", id, v.n());
}

bool renders_empty(const tok::Vocab& v, int32_t id, bool render_special) {
  const TokenType t = v.type[id];
  return !render_special && (t == TokenType::Control || t == TokenType::Unknown);
}

}  // namespace

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  const tok::Vocab& v = m_->vocab;
  std::string out;
  bool strip = strips_leading_space();
  for (int32_t id : ids) {
    check_id(v, id);
    if (renders_empty(v, id, render_special)) continue;
    std::string_view p = v.piece[id];
    if (strip && !p.empty()) {
      if (p.front() == ' ') p.remove_prefix(1);
      strip = false;
    }
    out.append(p);
  }
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  const tok::Vocab& v = m_->vocab;
  check_id(v, id);
  if (renders_empty(v, id, render_special)) return {};
  return v.piece[id];
}

bool Tokenizer::strips_leading_space() const {
  const tok::Vocab& v = m_->vocab;
  return (v.kind == TokenizerKind::Spm && v.add_space_prefix) || v.kind == TokenizerKind::WordPiece;
}

int32_t Tokenizer::n_vocab() const { return m_->vocab.n(); }
int32_t Tokenizer::bos() const { return m_->vocab.bos; }
int32_t Tokenizer::eos() const { return m_->vocab.eos; }
int32_t Tokenizer::eot() const { return m_->vocab.eot; }
int32_t Tokenizer::eom() const { return m_->vocab.eom; }
int32_t Tokenizer::unk() const { return m_->vocab.unk; }
int32_t Tokenizer::sep() const { return m_->vocab.sep; }
int32_t Tokenizer::pad() const { return m_->vocab.pad; }
bool Tokenizer::add_bos() const { return m_->vocab.add_bos; }
bool Tokenizer::add_eos() const { return m_->vocab.add_eos; }
bool Tokenizer::add_sep() const { return m_->vocab.add_sep; }

bool Tokenizer::is_eog(int32_t id) const {
  const auto& e = m_->vocab.eog;
  return std::binary_search(e.begin(), e.end(), id);
}
const std::vector<int32_t>& Tokenizer::eog_ids() const { return m_->vocab.eog; }

const std::string& Tokenizer::token_text(int32_t id) const {
  check_id(m_->vocab, id);
  return m_->vocab.text[id];
}

TokenType Tokenizer::token_type(int32_t id) const {
  check_id(m_->vocab, id);
  return m_->vocab.type[id];
}

int32_t Tokenizer::find_token(std::string_view text) const {
  return m_->vocab.find(text);
}

TokenizerKind Tokenizer::kind() const { return m_->vocab.kind; }
const std::string& Tokenizer::pre() const { return m_->vocab.pre; }

}  // namespace pl
