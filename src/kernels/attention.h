// The attention inner kernel: one tile of query rows that share a KV head,
// against that head's keys and values in the paged fp16 KV cache.
//
// Causal, online softmax ("flash" form): keys are visited in sub-blocks of up
// to 32; each sub-block's scores are a small GEMM (query rows x keys), its
// probabilities another (P x V) accumulated into the output rows, with the
// running max and sum rescaled as they grow. No [n_query, n_key] matrix.
//
// Same dispatch as the other kernels: a scalar reference and AVX2 / AVX-512
// versions, picked by cpu_level() (PARALLAMA_CPU).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pl::kernels {

// Layout of one head's KV block (block_size tokens): keys transposed,
// [head_dim][block_size] fp16, so a score GEMM loads consecutive keys of one
// dimension as one vector; values [block_size][head_dim] fp16, so P x V loads
// consecutive dimensions of one key.
struct AttnTileArgs {
  int head_dim = 0;    // D
  int block_size = 0;  // tokens per KV block
  int n_tok = 0;       // query tokens in the tile
  int n_group = 0;     // query heads per token sharing this KV head
  // Position of each query token ([n_tok], strictly increasing); token i sees
  // the keys at positions 0..pos[i].
  const int32_t* pos = nullptr;
  // Row (token i, group head g) of q and out is at [i * ld + g * head_dim], head_dim floats.
  const float* q = nullptr;
  int64_t ldq = 0;
  float* out = nullptr;
  int64_t ldo = 0;
  // Logical KV block b of this head: keys at k + block_table[b] * block_stride, values likewise from v.
  const uint16_t* k = nullptr;
  const uint16_t* v = nullptr;
  const int32_t* block_table = nullptr;  // [pos[n_tok - 1] / block_size + 1]
  int64_t block_stride = 0;              // elements between physical blocks of one head
  float scale = 1.0f;                    // applied to q . k before the softmax
};

// Floats of per-thread scratch attn_tile needs for n_tok * n_group query rows.
size_t attn_tile_scratch_floats(int head_dim, int n_tok, int n_group);

// out rows = softmax(scale * q . K^T) V over each token's visible keys.
// scratch: attn_tile_scratch_floats(...) floats. Single-threaded.
void attn_tile(const AttnTileArgs& a, float* scratch);

}  // namespace pl::kernels
