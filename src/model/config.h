// Hyper-parameters of a llama-family model, read once from GGUF metadata and
// immutable afterwards.
#pragma once

#include <cstdint>
#include <string>

namespace pl {

class GgufFile;

enum class RopeLayout {
  Normal,  // rotate adjacent pairs (x[2i], x[2i+1]): llama GGUFs (the converter permutes Q/K to this)
  Neox,    // rotate halves (x[i], x[i + n_rot/2]): qwen2, qwen3
};

// Bounds the loader puts on metadata, which make-model's options share: widths
// (embedding, feed-forward, heads x head dimension, context) stay ints with
// room to add, and a layer count above kMaxLayers is a corrupt file, not a model.
inline constexpr int64_t kMaxModelWidth = int64_t{1} << 30;
inline constexpr int kMaxLayers = 65536;

struct ModelConfig {
  std::string arch;        // general.architecture: llama | qwen2 | qwen3
  std::string name;        // general.name (may be empty)
  int n_vocab = 0;
  int n_embd = 0;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;        // per-head width of Q/K/V
  int n_ff = 0;
  int n_ctx_train = 0;
  int n_rot = 0;           // rotary dimensions (<= head_dim)
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // linear scaling: positions are multiplied by this
  RopeLayout rope_layout = RopeLayout::Normal;
  float rms_norm_eps = 1e-5f;
  bool has_qkv_bias = false;  // qwen2
  bool has_qk_norm = false;   // qwen3: RMSNorm over each head of Q and K before RoPE

  int n_embd_q() const { return n_head * head_dim; }
  int n_embd_kv() const { return n_head_kv * head_dim; }
  int n_group() const { return n_head / n_head_kv; }  // query heads per KV head

  // Throws pl::Error naming the key for a missing, wrong or unsupported value.
  static ModelConfig from_gguf(const GgufFile& f);
};

// Whether the engine may run several sequences of this model in one batch: an
// architecture table (llama, qwen2, qwen3 can), and a model may opt out with
// `parallama.supports_parallel = false` in its metadata. The scheduler forces
// parallel 1 when this is false.
bool supports_parallel(const GgufFile& f);

}  // namespace pl
