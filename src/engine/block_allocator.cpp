#include "engine/block_allocator.h"

#include <algorithm>

#include "core/error.h"

namespace pl {

BlockAllocator::BlockAllocator(int n_blocks, int block_size) : block_size_(block_size), blocks_(n_blocks) {
  PL_CHECK(n_blocks > 0 && block_size > 0, "bad KV pool: {} blocks of {}", n_blocks, block_size);
  tokens_.resize(static_cast<size_t>(n_blocks) * block_size);
  free_.reserve(n_blocks);
  for (int32_t b = n_blocks - 1; b >= 0; --b) free_.push_back(b);  // hand out low ids first
}

void BlockAllocator::check_counts() const {
  PL_CHECK(n_free() + n_evictable() + n_held_ == n_blocks(), "block accounting: {} free + {} evictable + {} held != {}",
           n_free(), n_evictable(), n_held_, n_blocks());
}

std::optional<int32_t> BlockAllocator::allocate() {
  int32_t b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (!lru_.empty()) {
    b = lru_.front();
    uncache(b);  // also removes it from the LRU list
  } else {
    return std::nullopt;
  }
  Block& blk = blocks_[b];
  PL_CHECK(blk.ref == 0 && !blk.cached, "allocated block {} is in use", b);
  blk.ref = 1;
  ++n_held_;
  check_counts();
  return b;
}

void BlockAllocator::release(int32_t block) {
  Block& blk = blocks_.at(block);
  PL_CHECK(blk.ref > 0, "release of block {} that is not held", block);
  if (--blk.ref > 0) return;
  --n_held_;
  if (blk.cached) {
    lru_.push_back(block);
    blk.lru_pos = std::prev(lru_.end());
  } else {
    free_.push_back(block);
  }
  check_counts();
}

void BlockAllocator::uncache(int32_t block) {
  Block& blk = blocks_[block];
  PL_CHECK(blk.cached, "uncache of block {} that is not cached", block);
  auto it = by_hash_.find(blk.hash);
  PL_CHECK(it != by_hash_.end() && it->second == block, "prefix index does not point at block {}", block);
  by_hash_.erase(it);
  if (blk.ref == 0) lru_.erase(blk.lru_pos);
  blk.cached = false;
  blk.hash = 0;
}

uint64_t BlockAllocator::chain_hash(uint64_t parent, std::span<const int32_t> tokens) {
  // FNV-1a over the parent hash and the tokens, then a final avalanche (splitmix64's).
  uint64_t h = 1469598103934665603ull ^ parent;
  for (int32_t t : tokens) {
    h = (h ^ static_cast<uint32_t>(t)) * 1099511628211ull;
    h = (h ^ (static_cast<uint64_t>(static_cast<uint32_t>(t)) >> 16)) * 1099511628211ull;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

BlockAllocator::PrefixHit BlockAllocator::acquire_prefix(std::span<const int32_t> tokens, int max_tokens) {
  PrefixHit hit;
  ++n_queries_;
  const int n_full = std::min<int>(static_cast<int>(tokens.size()), max_tokens) / block_size_;
  n_query_blocks_ += n_full;
  uint64_t parent = 0;
  for (int i = 0; i < n_full; ++i) {
    std::span<const int32_t> blk_tokens = tokens.subspan(static_cast<size_t>(i) * block_size_, block_size_);
    const uint64_t h = chain_hash(parent, blk_tokens);
    auto it = by_hash_.find(h);
    if (it == by_hash_.end()) break;
    const int32_t b = it->second;
    if (!std::equal(blk_tokens.begin(), blk_tokens.end(), tokens_.begin() + static_cast<size_t>(b) * block_size_))
      break;  // a hash collision: treat as a miss
    Block& blk = blocks_[b];
    if (blk.ref == 0) {
      lru_.erase(blk.lru_pos);
      ++n_held_;
    }
    ++blk.ref;
    hit.blocks.push_back(b);
    hit.last_hash = parent = h;
  }
  n_hit_blocks_ += hit.blocks.size();
  check_counts();
  return hit;
}

void BlockAllocator::register_full(int32_t block, uint64_t hash, std::span<const int32_t> tokens) {
  PL_CHECK(static_cast<int>(tokens.size()) == block_size_, "register_full with {} tokens", tokens.size());
  Block& blk = blocks_.at(block);
  PL_CHECK(blk.ref > 0, "register_full of block {} that is not held", block);
  if (blk.cached || by_hash_.contains(hash)) return;
  blk.cached = true;
  blk.hash = hash;
  by_hash_[hash] = block;
  std::copy(tokens.begin(), tokens.end(), tokens_.begin() + static_cast<size_t>(block) * block_size_);
}

}  // namespace pl
