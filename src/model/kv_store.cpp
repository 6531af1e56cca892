#include "model/kv_store.h"

#include <new>
#include <stdexcept>

#include "model/config.h"

namespace pl {
namespace {

// a * b, or false when it does not fit 64 bits (shapes come from untrusted metadata and flags).
bool mul_fits(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_mul_overflow(a, b, &out); }

}  // namespace

void check_context_size(int64_t n_ctx) {
  if (n_ctx <= 0) fail("context size {} must be positive", n_ctx);
  if (n_ctx > kMaxContext) fail("context size {} is too large (at most {} tokens)", n_ctx, kMaxContext);
}

int kv_blocks_for_context(int64_t n_ctx, int block_size) {
  PL_CHECK(block_size > 0 && block_size <= kMaxContext, "block size {}", block_size);
  check_context_size(n_ctx);
  return static_cast<int>((n_ctx + block_size - 1) / block_size);
}

KvStoreConfig KvStoreConfig::for_context(const ModelConfig& m, int64_t n_ctx, int block_size) {
  return {m.n_layer, m.n_head_kv, m.head_dim, block_size, kv_blocks_for_context(n_ctx, block_size)};
}

uint64_t KvStoreConfig::n_elements() const {
  uint64_t n = 1;
  for (int d : {n_layer, n_blocks, n_head_kv, block_size, head_dim})
    if (!mul_fits(n, static_cast<uint64_t>(d), n)) fail("the KV cache of {} tokens is too large to address", n_slots());
  return n;
}

uint64_t KvStoreConfig::n_bytes() const {
  uint64_t n = 0;
  // K and V, fp16 each.
  if (!mul_fits(n_elements(), 2 * sizeof(uint16_t), n))
    fail("the KV cache of {} tokens is too large to address", n_slots());
  return n;
}

KvStore::KvStore(const KvStoreConfig& c) : c_(c) {
  PL_CHECK(c.n_layer > 0 && c.n_head_kv > 0 && c.head_dim > 0 && c.block_size > 0 && c.n_blocks > 0,
           "bad KV store shape");
  const uint64_t n = c.n_elements();
  try {
    k_.assign(n, 0);
    v_.assign(n, 0);
  } catch (const std::bad_alloc&) {
    fail("cannot allocate the KV cache for a context of {} tokens: {} bytes ({} layers x {} KV heads x {} dims, "
         "K and V in fp16)",
         c.n_slots(), c.n_bytes(), c.n_layer, c.n_head_kv, c.head_dim);
  } catch (const std::length_error&) {
    fail("the KV cache for a context of {} tokens is too large: {} bytes", c.n_slots(), c.n_bytes());
  }
}

}  // namespace pl
