#include "model/config.h"

#include <cmath>
#include <string_view>

#include "core/error.h"
#include "gguf/gguf.h"

namespace pl {

ModelConfig ModelConfig::from_gguf(const GgufFile& f) {
  ModelConfig c;
  c.arch = f.get<std::string>("general.architecture");
  if (c.arch != "llama" && c.arch != "qwen2" && c.arch != "qwen3")
    fail("unsupported model architecture '{}' (supported: llama, qwen2, qwen3)", c.arch);
  c.name = f.get_or<std::string>("general.name", "");
  const std::string a = c.arch + ".";
  auto positive = [&](const std::string& key) {
    int64_t v = f.get<int64_t>(key);
    if (v <= 0 || v > kMaxModelWidth) fail("metadata key '{}': expected a positive size, got {}", key, v);
    return static_cast<int>(v);
  };
  c.n_embd = positive(a + "embedding_length");
  c.n_layer = positive(a + "block_count");
  if (c.n_layer > kMaxLayers)
    fail("metadata key '{}': {} layers is more than {}", a + "block_count", c.n_layer, kMaxLayers);
  c.n_ff = positive(a + "feed_forward_length");
  c.n_head = positive(a + "attention.head_count");
  c.n_head_kv = f.has(a + "attention.head_count_kv") ? positive(a + "attention.head_count_kv") : c.n_head;
  c.n_ctx_train = f.has(a + "context_length") ? positive(a + "context_length") : 2048;
  if (c.n_head % c.n_head_kv != 0)
    fail("metadata: head_count {} is not a multiple of head_count_kv {}", c.n_head, c.n_head_kv);
  if (f.has(a + "attention.key_length")) {
    c.head_dim = positive(a + "attention.key_length");
    if (f.has(a + "attention.value_length") && positive(a + "attention.value_length") != c.head_dim)
      fail("metadata: value_length differs from key_length, which is not supported");
  } else {
    if (c.n_embd % c.n_head != 0)
      fail("metadata: embedding_length {} is not divisible by head_count {}", c.n_embd, c.n_head);
    c.head_dim = c.n_embd / c.n_head;
  }
  // Widths are ints all through the model: the attention widths must stay in the same range as the others.
  if (int64_t{c.n_head} * c.head_dim > kMaxModelWidth)
    fail("metadata: head_count {} x head dimension {} is too large", c.n_head, c.head_dim);
  c.n_rot = f.has(a + "rope.dimension_count") ? positive(a + "rope.dimension_count") : c.head_dim;
  if (c.n_rot > c.head_dim || c.n_rot % 2 != 0)
    fail("metadata: rope.dimension_count {} must be even and at most the head dimension {}", c.n_rot, c.head_dim);
  c.rope_freq_base = f.get_or<float>(a + "rope.freq_base", 10000.0f);
  if (!(c.rope_freq_base > 0) || !std::isfinite(c.rope_freq_base))
    fail("metadata: rope.freq_base must be positive and finite, got {}", c.rope_freq_base);
  c.rms_norm_eps = f.get_or<float>(a + "attention.layer_norm_rms_epsilon", 1e-5f);
  if (!(c.rms_norm_eps > 0) || !std::isfinite(c.rms_norm_eps))
    fail("metadata: layer_norm_rms_epsilon must be positive and finite, got {}", c.rms_norm_eps);

  std::string scaling = f.get_or<std::string>(a + "rope.scaling.type", "none");
  if (scaling == "linear") {
    float factor = f.get<float>(a + "rope.scaling.factor");
    if (!(factor > 0) || !std::isfinite(factor)) fail("metadata: rope.scaling.factor must be positive, got {}", factor);
    c.rope_freq_scale = 1.0f / factor;
  } else if (scaling != "none") {
    fail("unsupported rope scaling type '{}' (supported: none, linear, and llama3 via rope_freqs)", scaling);
  }
  c.rope_layout = c.arch == "llama" ? RopeLayout::Normal : RopeLayout::Neox;
  c.has_qkv_bias = c.arch == "qwen2";
  c.has_qk_norm = c.arch == "qwen3";

  if (f.has("tokenizer.ggml.tokens")) {
    const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
    if (!tokens->is_array()) fail("metadata key 'tokenizer.ggml.tokens': expected an array");
    c.n_vocab = static_cast<int>(tokens->array().items.size());
  } else if (const GgufTensorInfo* emb = f.find_tensor("token_embd.weight"); emb && emb->shape.size() == 2) {
    c.n_vocab = static_cast<int>(emb->shape[1]);
  } else {
    fail("cannot tell the vocabulary size: no tokenizer.ggml.tokens and no 2-D token_embd.weight");
  }
  return c;
}

bool supports_parallel(const GgufFile& f) {
  // Architectures whose forward pass takes a mixed batch of sequences (per-token
  // positions, attention over each sequence's own KV blocks).
  static constexpr std::string_view kBatched[] = {"llama", "qwen2", "qwen3"};
  const std::string arch = f.get_or<std::string>("general.architecture", "");
  bool known = false;
  for (std::string_view a : kBatched) known = known || a == arch;
  return known && f.get_or<bool>("parallama.supports_parallel", true);
}

}  // namespace pl
