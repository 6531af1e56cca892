// Storage of the paged KV cache: one pool of fixed-size blocks per layer,
// shared by every sequence. Which block belongs to which sequence is the
// engine's business (engine/block_allocator); this class only holds the bytes
// and says where a (layer, block, head) lives.
#pragma once

#include <cstdint>
#include <vector>

#include "core/error.h"

namespace pl {

struct ModelConfig;

// The largest context a KV pool is made for: far beyond any model's, and
// small enough that positions, token counts and block ids (32-bit all through
// the engine) never overflow, whatever the block size.
inline constexpr int64_t kMaxContext = int64_t{1} << 30;

// Throws pl::Error naming the size unless 0 < n_ctx <= kMaxContext. For flags
// and requests, before anything is sized from them.
void check_context_size(int64_t n_ctx);

// Blocks of block_size tokens that hold a context of n_ctx tokens (checked as
// above): every place that turns a context size into a KV pool goes through
// here (or KvStoreConfig::for_context).
int kv_blocks_for_context(int64_t n_ctx, int block_size);

struct KvStoreConfig {
  int n_layer = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  int block_size = 32;  // tokens per block
  int n_blocks = 0;

  // The pool for a context of n_ctx tokens of model m (pl::Error as kv_blocks_for_context).
  static KvStoreConfig for_context(const ModelConfig& m, int64_t n_ctx, int block_size);
  int64_t n_slots() const { return int64_t{n_blocks} * block_size; }
  // fp16 elements of K (as many of V), and bytes of both; pl::Error when they overflow 64 bits.
  uint64_t n_elements() const;
  uint64_t n_bytes() const;
};

class KvStore {
 public:
  // Throws pl::Error saying how many bytes could not be allocated.
  explicit KvStore(const KvStoreConfig& c);

  const KvStoreConfig& config() const { return c_; }
  int64_t n_slots() const { return int64_t{c_.n_blocks} * c_.block_size; }
  uint64_t n_bytes() const { return k_.size() * 2 * sizeof(uint16_t); }

  // One head's keys of one block, transposed: [head_dim, block_size] fp16 (a score GEMM loads
  // consecutive keys of one dimension as a vector); its values: [block_size, head_dim] fp16.
  // Both contiguous, so attention over a block streams two small matrices per head.
  uint16_t* k(int layer, int block, int head) { return k_.data() + offset(layer, block, head); }
  uint16_t* v(int layer, int block, int head) { return v_.data() + offset(layer, block, head); }
  const uint16_t* k(int layer, int block, int head) const { return k_.data() + offset(layer, block, head); }
  const uint16_t* v(int layer, int block, int head) const { return v_.data() + offset(layer, block, head); }
  // Elements from one block of a head to the next block of the same head.
  int64_t block_stride() const { return int64_t{c_.n_head_kv} * c_.block_size * c_.head_dim; }

 private:
  KvStoreConfig c_;
  std::vector<uint16_t> k_;  // [n_layer, n_blocks, n_head_kv, head_dim, block_size]
  std::vector<uint16_t> v_;  // [n_layer, n_blocks, n_head_kv, block_size, head_dim]

  size_t offset(int layer, int block, int head) const {
    PL_CHECK(layer >= 0 && layer < c_.n_layer && block >= 0 && block < c_.n_blocks && head >= 0 &&
                 head < c_.n_head_kv,
             "kv index (layer {}, block {}, head {}) out of range", layer, block, head);
    return ((static_cast<size_t>(layer) * c_.n_blocks + block) * c_.n_head_kv + head) *
           static_cast<size_t>(c_.block_size) * c_.head_dim;
  }
};

}  // namespace pl
