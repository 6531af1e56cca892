#include "model/kv_store.h"

namespace pl {

KvStore::KvStore(const KvStoreConfig& c) : c_(c) {
  PL_CHECK(c.n_layer > 0 && c.n_head_kv > 0 && c.head_dim > 0 && c.block_size > 0 && c.n_blocks > 0,
           "bad KV store shape");
  size_t n = static_cast<size_t>(c.n_layer) * c.n_blocks * c.n_head_kv * c.block_size * c.head_dim;
  k_.assign(n, 0);
  v_.assign(n, 0);
}

}  // namespace pl
