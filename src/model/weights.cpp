#include "model/weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

#include <unordered_set>

#include "core/error.h"
#include "gguf/gguf.h"
#include "kernels/thread_pool.h"

namespace pl {

namespace {
// Drops the resident pages of a read-only file mapping inside [p, p + n).
void release_pages(const void* p, size_t n) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) & ~(page - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}
}  // namespace
namespace {

std::string shape_str(const std::vector<uint64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

class Loader {
 public:
  explicit Loader(const GgufFile& f) : f_(f) {}

  const GgufTensorInfo* find(const std::string& name, bool required) {
    const GgufTensorInfo* t = f_.find_tensor(name);
    if (t == nullptr && required) fail("tensor '{}' is missing from the model", name);
    if (t != nullptr) used_.insert(name);
    return t;
  }

  void expect_shape(const GgufTensorInfo& t, const std::vector<uint64_t>& shape) {
    if (t.shape != shape) fail("tensor '{}': expected shape {}, got {}", t.name, shape_str(shape), shape_str(t.shape));
  }

  // A 1-D float vector (norm weights, biases).
  std::span<const float> vec(const std::string& name, uint64_t n, bool required = true) {
    const GgufTensorInfo* t = find(name, required);
    if (t == nullptr) return {};
    expect_shape(*t, {n});
    if (t->type != DType::F32) fail("tensor '{}': expected type F32, got {}", name, dtype_name(t->type));
    n_bytes += t->n_bytes;
    return {reinterpret_cast<const float*>(t->data), static_cast<size_t>(n)};
  }

  // A matrix used by matmul: n_rows rows of n_cols.
  kernels::WeightView mat(const std::string& name, uint64_t n_cols, uint64_t n_rows, bool required = true) {
    const GgufTensorInfo* t = find(name, required);
    if (t == nullptr) return {DType::F32, 0, 0, nullptr};
    expect_shape(*t, {n_cols, n_rows});
    if (!kernels::is_supported(t->type))
      fail("tensor '{}': type {} is not supported for matrices", name, dtype_name(t->type));
    n_bytes += t->n_bytes;
    return {t->type, static_cast<int64_t>(n_rows), static_cast<int64_t>(n_cols), t->data};
  }

  // Tensors the architecture does not know are an error: a model we would
  // silently run without some of its weights would give wrong answers.
  void reject_unused() {
    for (const GgufTensorInfo& t : f_.tensors())
      if (!used_.contains(t.name)) fail("tensor '{}' is not used by this architecture (unexpected model layout)", t.name);
  }

  uint64_t n_bytes = 0;

 private:
  const GgufFile& f_;
  std::unordered_set<std::string> used_;
};

}  // namespace

ModelWeights ModelWeights::from_gguf(const GgufFile& f, const ModelConfig& c) {
  Loader ld(f);
  ModelWeights w;
  const uint64_t E = c.n_embd, V = c.n_vocab, F = c.n_ff, Q = c.n_embd_q(), KV = c.n_embd_kv(), D = c.head_dim;
  w.token_embd = ld.mat("token_embd.weight", E, V);
  w.layers.resize(c.n_layer);
  for (int l = 0; l < c.n_layer; ++l) {
    LayerWeights& L = w.layers[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    L.attn_norm = ld.vec(p + "attn_norm.weight", E);
    L.wq = ld.mat(p + "attn_q.weight", E, Q);
    L.wk = ld.mat(p + "attn_k.weight", E, KV);
    L.wv = ld.mat(p + "attn_v.weight", E, KV);
    L.wo = ld.mat(p + "attn_output.weight", Q, E);
    if (c.has_qkv_bias) {
      L.bq = ld.vec(p + "attn_q.bias", Q);
      L.bk = ld.vec(p + "attn_k.bias", KV);
      L.bv = ld.vec(p + "attn_v.bias", KV);
    }
    if (c.has_qk_norm) {
      L.q_norm = ld.vec(p + "attn_q_norm.weight", D);
      L.k_norm = ld.vec(p + "attn_k_norm.weight", D);
    }
    L.ffn_norm = ld.vec(p + "ffn_norm.weight", E);
    L.w_gate = ld.mat(p + "ffn_gate.weight", E, F);
    L.w_up = ld.mat(p + "ffn_up.weight", E, F);
    L.w_down = ld.mat(p + "ffn_down.weight", F, E);
  }
  w.output_norm = ld.vec("output_norm.weight", E);
  w.output = ld.mat("output.weight", E, V, /*required=*/false);
  if (w.output.data == nullptr) w.output = w.token_embd;  // tied embeddings
  w.rope_freqs = ld.vec("rope_freqs.weight", c.n_rot / 2, /*required=*/false);
  ld.reject_unused();
  w.n_bytes = ld.n_bytes;
  // Repack every matrix matmul reads, once (token_embd is only looked up by
  // row, unless tied: then `output` is its packed copy).
  const int n_threads = default_thread_count();
  std::vector<kernels::WeightView*> to_pack;
  for (LayerWeights& L : w.layers)
    for (kernels::WeightView* v : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) to_pack.push_back(v);
  to_pack.push_back(&w.output);
  size_t n_packed = 0;
  for (const kernels::WeightView* v : to_pack)
    if (v->data != nullptr) n_packed += kernels::packed_bytes(*v);
  // All packed matrices in one huge-page arena (see PackArena).
  kernels::PackArena arena(n_packed);
  auto pack = [&](kernels::WeightView& v) {
    if (v.data == nullptr) return;
    if (auto p = kernels::pack_weights(v, n_threads, &arena)) {
      v.packed = p.get();
      w.packed.push_back(std::move(p));
      // matmul reads only the packed copy from now on: give the file's pages
      // back, or the weights would sit in memory twice (they are re-read from
      // the file if anything ever touches them again). Not for a tied output,
      // whose rows the embedding lookup still reads.
      if (f.is_file_mapped() && v.data != w.token_embd.data) release_pages(v.data, row_bytes(v.type, v.n_cols) * v.n_rows);
    }
  };
  for (kernels::WeightView* v : to_pack) pack(*v);
  return w;
}

}  // namespace pl
