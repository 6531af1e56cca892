// Bookkeeping of the paged KV cache: which physical blocks are free, which
// are held by sequences (reference counted, since a cached prompt prefix can
// be shared), and the prefix cache that maps a chain of full blocks' tokens
// to the blocks that already hold their K/V.
//
// Every mutation goes through this class, and its invariants are checked
// always (PL_CHECK):
//   - a block is in exactly one of: free list, evictable (cached, ref 0), held (ref > 0);
//   - a cached block's hash maps back to it;
//   - n_free() + n_evictable() + n_held() == n_blocks().
//
// Prefix hashing: block i of a token sequence has hash H(hash of block i-1,
// its block_size tokens), so equal hashes mean equal prefixes (and the stored
// tokens are compared too, so a hash collision can only miss, never alias).
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace pl {

class BlockAllocator {
 public:
  BlockAllocator(int n_blocks, int block_size);

  int n_blocks() const { return static_cast<int>(blocks_.size()); }
  int block_size() const { return block_size_; }
  int n_free() const { return static_cast<int>(free_.size()); }
  int n_evictable() const { return static_cast<int>(lru_.size()); }
  int n_held() const { return n_held_; }
  // Blocks that allocate() can hand out now (free + evictable cached ones).
  int n_available() const { return n_free() + n_evictable(); }

  // A block for new tokens, ref 1; evicts the least recently used cached block
  // when none is free. nullopt when every block is held.
  std::optional<int32_t> allocate();
  // Drops one reference; at zero a cached block becomes evictable (kept, LRU),
  // an uncached one free.
  void release(int32_t block);

  // Hash of a full block given its parent's hash (0 for the first block).
  static uint64_t chain_hash(uint64_t parent, std::span<const int32_t> tokens);

  struct PrefixHit {
    std::vector<int32_t> blocks;  // the cached blocks, in order
    uint64_t last_hash = 0;       // chain hash of the last one (0 when none), to continue the chain from
  };
  // Prefix-cache lookup: the longest run of leading full blocks of `tokens`
  // (at most max_tokens tokens) already cached. Each returned block gets a
  // reference. Counts a query, and a hit per block found.
  PrefixHit acquire_prefix(std::span<const int32_t> tokens, int max_tokens);
  // Registers a block that a sequence has just filled (block_size tokens
  // computed), so later requests with the same prefix can reuse it. A block
  // whose hash is already cached stays uncached (the first copy wins).
  void register_full(int32_t block, uint64_t hash, std::span<const int32_t> tokens);

  int ref_count(int32_t block) const { return blocks_.at(block).ref; }
  bool is_cached(int32_t block) const { return blocks_.at(block).cached; }

  uint64_t n_prefix_queries() const { return n_queries_; }
  uint64_t n_prefix_hit_blocks() const { return n_hit_blocks_; }
  uint64_t n_prefix_query_blocks() const { return n_query_blocks_; }

 private:
  struct Block {
    int ref = 0;
    bool cached = false;
    uint64_t hash = 0;
    std::list<int32_t>::iterator lru_pos;  // valid while cached and ref == 0
  };
  int block_size_;
  std::vector<Block> blocks_;
  std::vector<int32_t> tokens_;        // [n_blocks, block_size] tokens of cached blocks
  std::vector<int32_t> free_;          // stack of free block ids
  std::list<int32_t> lru_;             // evictable cached blocks, least recently used first
  std::unordered_map<uint64_t, int32_t> by_hash_;
  int n_held_ = 0;
  uint64_t n_queries_ = 0, n_query_blocks_ = 0, n_hit_blocks_ = 0;

  void uncache(int32_t block);
  void check_counts() const;
};

}  // namespace pl
