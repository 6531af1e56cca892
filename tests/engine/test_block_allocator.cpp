#include <gtest/gtest.h>

#include "engine/block_allocator.h"
#include "engine/stop_matcher.h"

using namespace pl;

TEST(BlockAllocator, AllocateReleaseAccounting) {
  BlockAllocator a(4, 2);
  std::vector<int32_t> got;
  for (int i = 0; i < 4; ++i) got.push_back(*a.allocate());
  EXPECT_EQ(got, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_FALSE(a.allocate().has_value());
  EXPECT_EQ(a.n_held(), 4);
  a.release(2);
  EXPECT_EQ(a.n_free(), 1);
  EXPECT_EQ(*a.allocate(), 2);
}

TEST(BlockAllocator, PrefixCacheSharesAndEvictsLru) {
  BlockAllocator a(4, 2);
  std::vector<int32_t> toks = {1, 2, 3, 4, 5};
  // A sequence fills two blocks and registers them.
  int32_t b0 = *a.allocate(), b1 = *a.allocate();
  uint64_t h0 = BlockAllocator::chain_hash(0, std::span(toks).subspan(0, 2));
  uint64_t h1 = BlockAllocator::chain_hash(h0, std::span(toks).subspan(2, 2));
  a.register_full(b0, h0, std::span(toks).subspan(0, 2));
  a.register_full(b1, h1, std::span(toks).subspan(2, 2));
  // Another sequence with the same prefix shares them (ref 2).
  std::vector<int32_t> hit = a.acquire_prefix(toks, 4).blocks;
  EXPECT_EQ(hit, (std::vector<int32_t>{b0, b1}));
  EXPECT_EQ(a.acquire_prefix(toks, 4).last_hash, h1);  // the chain continues from the last block
  a.release(b0);
  a.release(b1);
  EXPECT_EQ(a.ref_count(b0), 2);
  // max_tokens caps the lookup: 3 tokens cover one full block.
  a.release(b0);
  a.release(b1);
  std::vector<int32_t> one = a.acquire_prefix(toks, 3).blocks;
  EXPECT_EQ(one, (std::vector<int32_t>{b0}));
  a.release(b0);
  // All released: cached blocks stay findable, as evictable.
  a.release(b0);
  a.release(b1);
  EXPECT_EQ(a.n_held(), 0);
  EXPECT_EQ(a.n_evictable(), 2);
  EXPECT_EQ(a.n_available(), 4);
  // A different prefix misses.
  std::vector<int32_t> other = {1, 9, 3, 4};
  EXPECT_TRUE(a.acquire_prefix(other, 4).blocks.empty());
  // Allocation takes free blocks first, then evicts the least recently used cached one (b0, released first).
  a.allocate();
  a.allocate();
  int32_t evicted = *a.allocate();
  EXPECT_EQ(evicted, b0);
  EXPECT_FALSE(a.is_cached(b0));
  EXPECT_TRUE(a.acquire_prefix(toks, 4).blocks.empty());  // chain broken at block 0
  EXPECT_EQ(a.n_prefix_queries(), 5u);
  EXPECT_EQ(a.n_prefix_hit_blocks(), 5u);
}

TEST(BlockAllocator, DoubleReleaseIsACheckFailure) {
  BlockAllocator a(2, 2);
  int32_t b = *a.allocate();
  a.release(b);
  EXPECT_DEATH(a.release(b), "not held");
}

TEST(StopMatcher, HoldsBackPossibleStopPrefixes) {
  StopMatcher m({"</end>", "STOP"});
  EXPECT_EQ(m.push("Hello </e"), "Hello ");
  EXPECT_EQ(m.push("nv> x S"), "</env> x ");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.push("TOP and more"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("later"), "");
}

TEST(StopMatcher, EarliestStopWinsAndFlushReleasesHeldText) {
  StopMatcher m({"bc", "ab"});
  EXPECT_EQ(m.push("xabc"), "x");
  EXPECT_TRUE(m.stopped());
  StopMatcher n({"stop"});
  EXPECT_EQ(n.push("so st"), "so ");
  EXPECT_EQ(n.flush(), "st");
  StopMatcher none({});
  EXPECT_EQ(none.push("anything"), "anything");
}
