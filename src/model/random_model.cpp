#include "model/random_model.h"

#include <cmath>
#include <cstring>
#include <new>
#include <vector>

#include "core/error.h"
#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "kernels/kernels.h"
#include "kernels/thread_pool.h"
#include "model/config.h"
#include "model/file_type.h"

namespace pl {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t hash_name(std::string_view s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// How a tensor's values are drawn: uniform with the given mean and standard deviation.
struct Init {
  float mean;
  float std;
};

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> shape;  // ggml order
  Init init;
};

// Synthetic SPM vocabulary: specials, the 256 byte-fallback tokens, printable
// ASCII, then "▁x" word starts and letter pairs until n_vocab tokens.
void add_synthetic_vocab(GgufWriter& w, int n_vocab) {
  std::vector<std::string> pieces = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};  // UNKNOWN, CONTROL, CONTROL
  for (int b = 0; b < 256; ++b) {
    pieces.push_back(fmt::format("<0x{:02X}>", b));
    types.push_back(6);  // BYTE
  }
  const std::string space = "\xe2\x96\x81";  // U+2581, SPM's visible space
  std::vector<std::string> words = {space};
  for (char c = '!'; c <= '~'; ++c) words.push_back(std::string(1, c));
  for (char c = 'a'; c <= 'z'; ++c) words.push_back(space + c);
  for (char a = 'a'; a <= 'z'; ++a)
    for (char b = 'a'; b <= 'z'; ++b) words.push_back(std::string{a, b});
  if (n_vocab < static_cast<int>(pieces.size() + 1 + 94))
    fail("--n-vocab {} is too small for the synthetic vocabulary (minimum {})", n_vocab, pieces.size() + 1 + 94);
  for (size_t i = 0; pieces.size() < static_cast<size_t>(n_vocab); ++i) {
    if (i >= words.size()) fail("--n-vocab {} is larger than the synthetic vocabulary can fill", n_vocab);
    pieces.push_back(words[i]);
    types.push_back(1);  // NORMAL
  }
  GgufArray tokens{GgufType::STRING, {}};
  GgufArray scores{GgufType::FLOAT32, {}};
  GgufArray token_types{GgufType::INT32, {}};
  for (size_t i = 0; i < pieces.size(); ++i) {
    tokens.items.emplace_back(pieces[i]);
    scores.items.emplace_back(types[i] == 1 ? -static_cast<float>(i) : 0.0f);
    token_types.items.emplace_back(types[i]);
  }
  w.set("tokenizer.ggml.model", "llama");
  w.set("tokenizer.ggml.pre", "default");
  w.set("tokenizer.ggml.tokens", std::move(tokens));
  w.set("tokenizer.ggml.scores", std::move(scores));
  w.set("tokenizer.ggml.token_type", std::move(token_types));
  w.set("tokenizer.ggml.bos_token_id", uint32_t{1});
  w.set("tokenizer.ggml.eos_token_id", uint32_t{2});
  w.set("tokenizer.ggml.unknown_token_id", uint32_t{0});
  w.set("tokenizer.ggml.add_bos_token", true);
  w.set("tokenizer.ggml.add_eos_token", false);
}

// Llama 3.1-style frequency divisors for each rotary pair (stored as rope_freqs.weight):
// long wavelengths are divided by the factor, short ones kept, a smooth ramp between.
std::vector<float> llama3_rope_freqs(int head_dim, float base, float factor) {
  const float low_freq_factor = 1.0f, high_freq_factor = 4.0f, original_ctx = 8192.0f;
  const float low_wavelen = original_ctx / low_freq_factor;
  const float high_wavelen = original_ctx / high_freq_factor;
  std::vector<float> out;
  for (int i = 0; i < head_dim; i += 2) {
    float freq = 1.0f / std::pow(base, static_cast<float>(i) / head_dim);
    float wavelen = 2.0f * static_cast<float>(M_PI) / freq;
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(factor);
    } else {
      float smooth = (original_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      out.push_back(1.0f / ((1 - smooth) / factor + smooth));
    }
  }
  return out;
}

void validate(const RandomModelSpec& s) {
  if (s.arch != "llama" && s.arch != "qwen2" && s.arch != "qwen3")
    fail("unsupported --arch '{}' (expected llama, qwen2 or qwen3)", s.arch);
  // The loader's bounds (config.h), checked here to name the option.
  auto positive = [](int v, const char* what, int64_t max = kMaxModelWidth) {
    if (v <= 0) fail("{} must be positive, got {}", what, v);
    if (v > max) fail("{} {} is too large (at most {})", what, v, max);
  };
  positive(s.n_embd, "--n-embd");
  positive(s.n_layer, "--n-layer", kMaxLayers);
  positive(s.n_head, "--n-head");
  positive(s.n_head_kv, "--n-head-kv");
  positive(s.n_ff, "--n-ff");
  positive(s.n_ctx, "--n-ctx");
  if (s.head_dim < 0) fail("--head-dim must be positive, got {}", s.head_dim);
  if (s.head_dim > 0) positive(s.head_dim, "--head-dim");
  auto positive_finite = [](float v, const char* what) {
    if (!(v > 0) || !std::isfinite(v)) fail("{} must be positive and finite, got {}", what, v);
  };
  positive_finite(s.rope_freq_base, "--rope-freq-base");
  positive_finite(s.rms_norm_eps, "--rms-norm-eps");
  if (s.n_head % s.n_head_kv != 0)
    fail("--n-head {} must be a multiple of --n-head-kv {}", s.n_head, s.n_head_kv);
  int head_dim = s.head_dim > 0 ? s.head_dim : s.n_embd / s.n_head;
  if (s.head_dim <= 0 && s.n_embd % s.n_head != 0)
    fail("--n-embd {} is not divisible by --n-head {} (give --head-dim)", s.n_embd, s.n_head);
  if (head_dim % 2 != 0) fail("head dimension {} must be even for rotary embeddings", head_dim);
  if (!file_type_from_name(s.type)) fail("unknown --type '{}' (expected one of {})", s.type, file_type_names());
  if (s.rope_scaling != "none" && s.rope_scaling != "linear" && s.rope_scaling != "llama3")
    fail("unknown --rope-scaling '{}' (expected none, linear or llama3)", s.rope_scaling);
  if (s.rope_scaling != "none") positive_finite(s.rope_scaling_factor, "--rope-scaling-factor");
  if (s.rope_scaling == "llama3" && s.arch != "llama") fail("llama3 rope scaling is only defined for --arch llama");
}

// The loader's own checks (ModelConfig::from_gguf) on the metadata written so
// far, so that make-model never writes a file that the loader rejects.
void check_loadable(const GgufWriter& w) {
  const std::vector<uint8_t> metadata = w.to_bytes();
  try {
    ModelConfig::from_gguf(GgufFile::parse(metadata));
  } catch (const Error& e) {
    fail("these options give a model that would not load: {}", e.what());
  }
}

}  // namespace

std::string write_random_model(const RandomModelSpec& s, const std::string& path, int n_threads) {
  validate(s);
  check_output_path(path);
  const FileType ft = *file_type_from_name(s.type);
  const int head_dim = s.head_dim > 0 ? s.head_dim : s.n_embd / s.n_head;
  const std::string& a = s.arch;

  GgufWriter w;
  w.set("general.architecture", a);
  w.set("general.name", s.name);
  w.set("general.file_type", ft.gguf_id);
  w.set("general.quantization_version", uint32_t{2});
  if (!s.supports_parallel) w.set("parallama.supports_parallel", false);
  w.set(a + ".context_length", static_cast<uint32_t>(s.n_ctx));
  w.set(a + ".embedding_length", static_cast<uint32_t>(s.n_embd));
  w.set(a + ".block_count", static_cast<uint32_t>(s.n_layer));
  w.set(a + ".feed_forward_length", static_cast<uint32_t>(s.n_ff));
  w.set(a + ".attention.head_count", static_cast<uint32_t>(s.n_head));
  w.set(a + ".attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
  w.set(a + ".attention.layer_norm_rms_epsilon", s.rms_norm_eps);
  w.set(a + ".rope.freq_base", s.rope_freq_base);
  w.set(a + ".rope.dimension_count", static_cast<uint32_t>(head_dim));
  if (s.head_dim > 0) {
    w.set(a + ".attention.key_length", static_cast<uint32_t>(head_dim));
    w.set(a + ".attention.value_length", static_cast<uint32_t>(head_dim));
  }
  if (s.rope_scaling == "linear") {
    w.set(a + ".rope.scaling.type", "linear");
    w.set(a + ".rope.scaling.factor", s.rope_scaling_factor);
  }

  int n_vocab = s.n_vocab;
  if (!s.vocab_path.empty()) {
    GgufFile vocab = GgufFile::open(s.vocab_path);
    for (const GgufKV& kv : vocab.metadata())
      if (kv.key.rfind("tokenizer.", 0) == 0) w.set(kv.key, kv.value);
    const size_t n_tokens = with_file_context(s.vocab_path, [&] {
      return vocab.get_array<std::string>("tokenizer.ggml.tokens").size();
    });
    if (n_tokens == 0) fail("the vocabulary in {} is empty", s.vocab_path);
    if (n_tokens > static_cast<size_t>(kMaxModelWidth))
      fail("the vocabulary in {} has {} tokens, more than {}", s.vocab_path, n_tokens, kMaxModelWidth);
    n_vocab = static_cast<int>(n_tokens);
  } else {
    add_synthetic_vocab(w, n_vocab);
  }
  w.set(a + ".vocab_size", static_cast<uint32_t>(n_vocab));
  check_loadable(w);

  // Linear layers draw with std 1/sqrt(n_in) so activations keep their scale
  // layer after layer; norms sit near 1 so they scale but never flip signs.
  const uint64_t E = s.n_embd, F = s.n_ff, V = n_vocab, Q = uint64_t(s.n_head) * head_dim,
                 KV = uint64_t(s.n_head_kv) * head_dim, D = head_dim;
  auto lin = [](uint64_t n_in) { return Init{0.0f, 1.0f / std::sqrt(static_cast<float>(n_in))}; };
  const Init norm{1.0f, 0.1f}, bias{0.0f, 0.1f};
  std::vector<TensorSpec> specs;
  specs.push_back({"token_embd.weight", {E, V}, lin(E)});
  for (int l = 0; l < s.n_layer; ++l) {
    std::string p = fmt::format("blk.{}.", l);
    specs.push_back({p + "attn_norm.weight", {E}, norm});
    specs.push_back({p + "attn_q.weight", {E, Q}, lin(E)});
    specs.push_back({p + "attn_k.weight", {E, KV}, lin(E)});
    specs.push_back({p + "attn_v.weight", {E, KV}, lin(E)});
    if (a == "qwen2") {
      specs.push_back({p + "attn_q.bias", {Q}, bias});
      specs.push_back({p + "attn_k.bias", {KV}, bias});
      specs.push_back({p + "attn_v.bias", {KV}, bias});
    }
    if (a == "qwen3") {
      specs.push_back({p + "attn_q_norm.weight", {D}, norm});
      specs.push_back({p + "attn_k_norm.weight", {D}, norm});
    }
    specs.push_back({p + "attn_output.weight", {Q, E}, lin(Q)});
    specs.push_back({p + "ffn_norm.weight", {E}, norm});
    specs.push_back({p + "ffn_gate.weight", {E, F}, lin(E)});
    specs.push_back({p + "ffn_up.weight", {E, F}, lin(E)});
    specs.push_back({p + "ffn_down.weight", {F, E}, lin(F)});
  }
  specs.push_back({"output_norm.weight", {E}, norm});
  if (!s.tied_output) specs.push_back({"output.weight", {E, V}, lin(E)});

  ThreadPool pool(n_threads);
  TypeChooser types(ft, s.n_layer);
  if (s.rope_scaling == "llama3") {
    std::vector<float> freqs = llama3_rope_freqs(head_dim, s.rope_freq_base, s.rope_scaling_factor);
    std::vector<uint8_t> bytes(freqs.size() * sizeof(float));
    std::memcpy(bytes.data(), freqs.data(), bytes.size());
    w.add_tensor("rope_freqs.weight", DType::F32, {freqs.size()}, std::move(bytes));
  }
  for (const TensorSpec& t : specs) {
    const uint64_t ne0 = t.shape[0];
    const uint64_t n_rows = t.shape.size() > 1 ? t.shape[1] : 1;
    const DType type = types.choose(t.name, static_cast<int>(t.shape.size()), ne0);
    const size_t rb = row_bytes(type, ne0);
    std::vector<uint8_t> bytes;
    try {
      bytes.resize(rb * n_rows);
    } catch (const std::bad_alloc&) {
      fail("cannot allocate tensor '{}': {} bytes ({} rows of {} {})", t.name, rb * n_rows, n_rows, ne0,
           dtype_name(type));
    }
    const uint64_t tensor_seed = hash_name(t.name, s.seed);
    const float half_width = t.init.std * std::sqrt(3.0f);  // uniform [-w, w] has std w/sqrt(3)
    pool.run([&](int ith, int nth) {
      std::vector<float> row(ne0);
      for (uint64_t r = ith; r < n_rows; r += nth) {
        uint64_t state = tensor_seed ^ (r * 0xd1b54a32d192ed03ull);
        for (uint64_t i = 0; i < ne0; ++i) {
          float u = static_cast<float>(splitmix64(state) >> 40) * (1.0f / 16777216.0f);  // [0, 1)
          row[i] = t.init.mean + (2.0f * u - 1.0f) * half_width;
        }
        kernels::quantize_row(type, row.data(), bytes.data() + r * rb, static_cast<int64_t>(ne0));
      }
    });
    w.add_tensor(t.name, type, t.shape, std::move(bytes));
  }
  w.write(path);
  return types.notes();
}

}  // namespace pl
