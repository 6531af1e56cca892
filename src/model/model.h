// A loaded llama-family model and its forward pass over a batch of tokens
// from many sequences at once.
//
// Config (immutable hyper-parameters), Weights (read-only views into the
// mmap'd file) and ForwardState (scratch, allocated once for the largest
// batch) are kept apart, llama2.c-style.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "model/attention.h"
#include "model/batch.h"
#include "model/config.h"
#include "model/kv_store.h"
#include "model/weights.h"

namespace pl {

class ThreadPool;

class Model {
 public:
  // Maps and validates the file; throws pl::Error naming the bad key or tensor.
  static std::unique_ptr<Model> load(const std::string& path);
  static std::unique_ptr<Model> from_gguf(GgufFile file);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const GgufFile& gguf() const { return file_; }

 private:
  explicit Model(GgufFile file);
  GgufFile file_;
  ModelConfig config_;
  ModelWeights weights_;
};

// Called with each named intermediate of the forward pass ("attn_norm", "q",
// "attn_out", "ffn_out", "result_norm", ...): rows are batch tokens.
using DebugHook = std::function<void(std::string_view name, int layer, const float* data, int64_t n_rows,
                                     int64_t n_cols)>;

// Scratch for forward passes of up to max_tokens tokens. Nothing is allocated
// during a forward pass.
class ForwardState {
 public:
  ForwardState(const ModelConfig& c, int max_tokens, int n_threads);
  int max_tokens() const { return max_tokens_; }

  DebugHook debug;  // optional

 private:
  friend int forward(const Model&, const Batch&, KvStore&, ForwardState&, ThreadPool&, float*, float*);
  int max_tokens_;
  std::vector<float> x_;     // [max_tokens, n_embd] residual stream
  std::vector<float> xb_;    // [max_tokens, n_embd] normed input of a sub-layer
  std::vector<float> q_;     // [max_tokens, n_embd_q]
  std::vector<float> k_;     // [max_tokens, n_embd_kv]
  std::vector<float> v_;     // [max_tokens, n_embd_kv]
  std::vector<float> att_;   // [max_tokens, n_embd_q] attention output before wo
  std::vector<float> hb_;    // [max_tokens, n_ff] gate, then silu(gate) * up
  std::vector<float> hb2_;   // [max_tokens, n_ff] up
  std::vector<float> rope_cos_;  // [max_tokens, n_rot / 2]
  std::vector<float> rope_sin_;  // [max_tokens, n_rot / 2]
  std::vector<double> rope_inv_freq_;  // [n_rot / 2] angle per position of each rotary pair
  std::vector<float> out_rows_;  // [max_tokens, n_embd] rows that need logits, gathered
  Batch out_batch_;  // the last layer's rows when only some outputs are read (see forward)
  std::vector<int32_t> out_src_;  // each of those rows' index in the batch
  AttentionScratch attn_scratch_;
};

// Runs one forward pass. For each token with want_logits (in batch order)
// writes n_vocab logits to `logits` ([n_out, n_vocab]); when `hidden` is given,
// also writes every token's final normed hidden state ([n_tokens, n_embd]).
// Returns n_out. Throws pl::Error for a token id outside the vocabulary.
// Without `hidden` (and without a debug hook), the last layer computes its
// attention output and feed-forward only for the rows that want logits:
// every row's K and V are stored all the same.
int forward(const Model& model, const Batch& batch, KvStore& kv, ForwardState& st, ThreadPool& pool, float* logits,
            float* hidden = nullptr);

}  // namespace pl
