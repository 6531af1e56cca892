#include "engine/single_sequence.h"

#include <algorithm>

namespace pl {
namespace {

constexpr int kBlockSize = 32;

KvStoreConfig kv_config(const ModelConfig& c, int n_ctx) { return KvStoreConfig::for_context(c, n_ctx, kBlockSize); }

}  // namespace

SingleSequence::SingleSequence(const Model& model, int n_ctx, int max_batch, ThreadPool& pool)
    : model_(model),
      n_ctx_(n_ctx),
      max_batch_(max_batch),
      pool_(pool),
      kv_(kv_config(model.config(), n_ctx)),
      state_(model.config(), max_batch, pool.size()) {
  block_table_.resize(kv_.config().n_blocks);
  for (size_t i = 0; i < block_table_.size(); ++i) block_table_[i] = static_cast<int32_t>(i);
}

std::span<const float> SingleSequence::eval(std::span<const int32_t> tokens, bool all_logits) {
  const int n_vocab = model_.config().n_vocab;
  if (tokens.empty()) fail("nothing to evaluate");
  if (n_past_ + static_cast<int64_t>(tokens.size()) > n_ctx_)
    fail("context overflow: {} tokens already, {} more, context holds {}", n_past_, tokens.size(), n_ctx_);
  logits_.resize(static_cast<size_t>(all_logits ? tokens.size() : 1) * n_vocab);
  size_t n_out = 0;
  for (size_t i = 0; i < tokens.size(); i += max_batch_) {
    const size_t n = std::min<size_t>(max_batch_, tokens.size() - i);
    batch_.clear();
    batch_.add_seq(tokens.subspan(i, n), n_past_, block_table_, /*logits_for_last=*/true);
    if (all_logits) std::fill(batch_.want_logits.begin(), batch_.want_logits.end(), 1);
    const bool last_chunk = i + n == tokens.size();
    if (!all_logits && !last_chunk) batch_.want_logits.back() = 0;
    float* out = logits_.data() + n_out * n_vocab;
    n_out += forward(model_, batch_, kv_, state_, pool_, out);
    n_past_ += static_cast<int>(n);
  }
  return logits_;
}

}  // namespace pl
