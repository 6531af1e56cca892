// One forward pass's worth of tokens, from any number of sequences.
//
// Tokens of one sequence are contiguous in the batch and in increasing
// position order (a prefill chunk, or one decode token). Each sequence names
// its KV blocks (its block table); a token at position p stores its K/V in
// block_table[p / block_size] at offset p % block_size, and attends to
// positions 0..p of its own sequence only.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace pl {

struct BatchSeq {
  int32_t tok_begin = 0;  // first token of this sequence in the batch
  int32_t tok_end = 0;    // one past the last
  std::span<const int32_t> block_table;  // physical KV block of each logical block
};

struct Batch {
  std::vector<int32_t> token;        // [n_tokens] token ids
  std::vector<int32_t> pos;          // [n_tokens] position within its sequence
  std::vector<uint8_t> want_logits;  // [n_tokens] 1 where logits are needed
  std::vector<BatchSeq> seqs;        // [n_seqs]

  int32_t n_tokens() const { return static_cast<int32_t>(token.size()); }
  void clear() {
    token.clear();
    pos.clear();
    want_logits.clear();
    seqs.clear();
  }
  // Appends a run of tokens of one sequence at positions first_pos, first_pos + 1, ...
  void add_seq(std::span<const int32_t> tokens, int32_t first_pos, std::span<const int32_t> block_table,
               bool logits_for_last) {
    BatchSeq s;
    s.tok_begin = n_tokens();
    for (size_t i = 0; i < tokens.size(); ++i) {
      token.push_back(tokens[i]);
      pos.push_back(first_pos + static_cast<int32_t>(i));
      want_logits.push_back(logits_for_last && i + 1 == tokens.size() ? 1 : 0);
    }
    s.tok_end = n_tokens();
    s.block_table = block_table;
    seqs.push_back(s);
  }
};

}  // namespace pl
