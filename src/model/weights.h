// Read-only typed views of a model's tensors inside the mmap'd GGUF file.
// Every tensor is validated at load (presence, dtype, shape), so the forward
// pass never checks.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "kernels/kernels.h"
#include "model/config.h"

namespace pl {

class GgufFile;

struct LayerWeights {
  std::span<const float> attn_norm;  // [n_embd]
  kernels::WeightView wq;            // [n_embd_q rows, n_embd cols]
  kernels::WeightView wk;            // [n_embd_kv, n_embd]
  kernels::WeightView wv;            // [n_embd_kv, n_embd]
  kernels::WeightView wo;            // [n_embd, n_embd_q]
  std::span<const float> bq, bk, bv; // [n_embd_q], [n_embd_kv], [n_embd_kv] (qwen2; empty otherwise)
  std::span<const float> q_norm, k_norm;  // [head_dim] (qwen3; empty otherwise)
  std::span<const float> ffn_norm;   // [n_embd]
  kernels::WeightView w_gate;        // [n_ff, n_embd]
  kernels::WeightView w_up;          // [n_ff, n_embd]
  kernels::WeightView w_down;        // [n_embd, n_ff]
};

struct ModelWeights {
  kernels::WeightView token_embd;    // [n_vocab rows, n_embd cols]; rows are looked up, dequantized
  std::vector<LayerWeights> layers;  // [n_layer]
  std::span<const float> output_norm;  // [n_embd]
  kernels::WeightView output;        // [n_vocab, n_embd] (token_embd when tied)
  std::span<const float> rope_freqs; // [n_rot / 2] frequency divisors (llama3 scaling), or empty

  // Throws pl::Error "tensor 'x': expected ..., got ..." for anything missing or malformed.
  // Matrices are then repacked for the active kernel level where it has a
  // packed kernel for their type (the views' `packed`); the mmap'd originals
  // stay for embedding lookups and for levels without one.
  static ModelWeights from_gguf(const GgufFile& f, const ModelConfig& c);
  // Bytes of all weights (what one decode step reads).
  uint64_t n_bytes = 0;
  // Owns what the views' `packed` point to (one per packed matrix).
  std::vector<std::unique_ptr<kernels::PackedWeights>> packed;
};

}  // namespace pl
