#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <stdexcept>

#include "kernels/kernels.h"
#include "kernels/thread_pool.h"
#include "model/attention.h"

namespace pl {
namespace {

// RMSNorm: x / sqrt(mean(x^2) + eps) * w. Scale-invariant normalization (no
// mean subtraction), the llama family's choice.
void rmsnorm(float* out, const float* x, std::span<const float> w, int n, float eps) {
  kernels::rmsnorm(out, x, w.data(), n, eps);
}

void rmsnorm_rows(float* out, const float* x, std::span<const float> w, int n_rows, int n, float eps) {
  for (int r = 0; r < n_rows; ++r) rmsnorm(out + static_cast<size_t>(r) * n, x + static_cast<size_t>(r) * n, w, n, eps);
}

void add_bias(float* y, std::span<const float> b, int n_rows, int n) {
  if (b.empty()) return;
  for (int r = 0; r < n_rows; ++r)
    for (int i = 0; i < n; ++i) y[static_cast<size_t>(r) * n + i] += b[i];
}

// Rotary embedding of each head of each token: pairs of dimensions are rotated
// by an angle proportional to the position, so q.k depends on the distance.
// The layout test sits outside the loops, so each inner loop is a plain
// elementwise one the compiler vectorizes.
void rope_rows(float* x, int n_rows, int n_heads, int head_dim, int n_rot, RopeLayout layout, const float* cos_t,
               const float* sin_t) {
  const int half = n_rot / 2;
  for (int r = 0; r < n_rows; ++r) {
    const float* cs = cos_t + static_cast<size_t>(r) * half;
    const float* sn = sin_t + static_cast<size_t>(r) * half;
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (static_cast<size_t>(r) * n_heads + h) * head_dim;
      if (layout == RopeLayout::Normal) {
        for (int i = 0; i < half; ++i) {
          const float x0 = v[2 * i], x1 = v[2 * i + 1];
          v[2 * i] = x0 * cs[i] - x1 * sn[i];
          v[2 * i + 1] = x0 * sn[i] + x1 * cs[i];
        }
      } else {
        float* a = v;
        float* b = v + half;
        for (int i = 0; i < half; ++i) {
          const float x0 = a[i], x1 = b[i];
          a[i] = x0 * cs[i] - x1 * sn[i];
          b[i] = x0 * sn[i] + x1 * cs[i];
        }
      }
    }
  }
}

// Runs fn(t0, t1) on token rows [0, T), split over the pool from min_rows
// rows up. Right after a matmul the workers are still spinning, so a section
// starts within a microsecond; the per-token work between the matmuls of an
// 8-token decode step (RoPE, the KV stores, SwiGLU) took ~6% of the step on
// one thread while the other waited. Norms and residual adds take ~1 us a
// decode step's worth of rows, so they split only for prefill-sized batches.
constexpr int kRowsPerSection = 64;
template <class F>
void parallel_rows(int T, int min_rows, ThreadPool& pool, F&& fn) {
  if (T < min_rows || pool.size() == 1) return fn(0, T);
  pool.run([&](int ith, int nth) { fn(T * ith / nth, T * (ith + 1) / nth); });
}

// SwiGLU: silu(gate) * up, with silu(x) = x * sigmoid(x), on [T, F]: one exp
// and one division per element, split over the pool from 16K elements up (a
// single token's 5632 stay on one thread).
void swiglu_rows(float* gate, const float* up, int T, int F, ThreadPool& pool) {
  constexpr int kSplitElems = 16384;
  parallel_rows(T, (kSplitElems + F - 1) / F, pool, [&](int t0, int t1) {
    const size_t a = static_cast<size_t>(t0) * F;
    kernels::swiglu(gate + a, up + a, static_cast<int64_t>(t1 - t0) * F);
  });
}

void add_into(float* x, const float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] += y[i];
}

// The rows of `batch` that want logits, as a batch of their own (same
// sequences, positions and block tables) in `out`, with each row's index in
// `batch` in `src` (increasing). Returns the number of rows.
int gather_output_rows(const Batch& batch, Batch& out, std::vector<int32_t>& src) {
  out.clear();
  src.clear();
  for (const BatchSeq& s : batch.seqs) {
    BatchSeq o;
    o.tok_begin = out.n_tokens();
    for (int32_t t = s.tok_begin; t < s.tok_end; ++t) {
      if (!batch.want_logits[t]) continue;
      out.token.push_back(batch.token[t]);
      out.pos.push_back(batch.pos[t]);
      out.want_logits.push_back(1);
      src.push_back(t);
    }
    o.tok_end = out.n_tokens();
    o.block_table = s.block_table;
    if (o.tok_end > o.tok_begin) out.seqs.push_back(o);
  }
  return out.n_tokens();
}

}  // namespace

Model::Model(GgufFile file) : file_(std::move(file)) {
  config_ = ModelConfig::from_gguf(file_);
  weights_ = ModelWeights::from_gguf(file_, config_);
}

std::unique_ptr<Model> Model::load(const std::string& path) {
  GgufFile f = GgufFile::open(path);
  try {
    return from_gguf(std::move(f));
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path, e.what()));
  }
}

std::unique_ptr<Model> Model::from_gguf(GgufFile file) { return std::unique_ptr<Model>(new Model(std::move(file))); }

ForwardState::ForwardState(const ModelConfig& c, int max_tokens, int n_threads) : max_tokens_(max_tokens) {
  PL_CHECK(max_tokens > 0, "max_tokens must be positive");
  // Per token: x, xb, out_rows (n_embd each), q and att (n_embd_q), k and v
  // (n_embd_kv), hb and hb2 (n_ff), rope cos and sin (n_rot / 2 each).
  // Dimensions are at most 2^30 (ModelConfig), so per_token fits 64 bits; times T it may not.
  const uint64_t T = static_cast<uint64_t>(max_tokens);
  const uint64_t per_token = 3 * uint64_t(c.n_embd) + 2 * uint64_t(c.n_embd_q()) + 2 * uint64_t(c.n_embd_kv()) +
                             2 * uint64_t(c.n_ff) + uint64_t(c.n_rot);
  uint64_t n_bytes = 0;
  if (__builtin_mul_overflow(T, per_token * sizeof(float), &n_bytes))
    fail("the forward-pass buffers for a batch of {} tokens are too large to address", max_tokens);
  try {
    x_.resize(T * c.n_embd);
    xb_.resize(T * c.n_embd);
    q_.resize(T * c.n_embd_q());
    k_.resize(T * c.n_embd_kv());
    v_.resize(T * c.n_embd_kv());
    att_.resize(T * c.n_embd_q());
    hb_.resize(T * c.n_ff);
    hb2_.resize(T * c.n_ff);
    rope_cos_.resize(T * c.n_rot / 2);
    rope_sin_.resize(T * c.n_rot / 2);
    rope_inv_freq_.resize(c.n_rot / 2);
    out_rows_.resize(T * c.n_embd);
  } catch (const std::bad_alloc&) {
    fail("cannot allocate the forward-pass buffers for a batch of {} tokens: {} bytes", max_tokens, n_bytes);
  } catch (const std::length_error&) {
    fail("the forward-pass buffers for a batch of {} tokens are too large: {} bytes", max_tokens, n_bytes);
  }
  attn_scratch_.per_thread.resize(n_threads);
}

int forward(const Model& model, const Batch& batch, KvStore& kv, ForwardState& st, ThreadPool& pool, float* logits,
            float* hidden) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  const int T = batch.n_tokens();
  PL_CHECK(T > 0 && T <= st.max_tokens(), "batch of {} tokens (state holds {})", T, st.max_tokens());
  PL_CHECK(batch.pos.size() == batch.token.size() && batch.want_logits.size() == batch.token.size(), "ragged batch");
  const int E = c.n_embd, Q = c.n_embd_q(), KV = c.n_embd_kv(), F = c.n_ff, D = c.head_dim;
  auto dbg = [&](std::string_view name, int layer, const float* data, int64_t cols) {
    if (st.debug) st.debug(name, layer, data, T, cols);
  };

  // Token embeddings: dequantize each token's row.
  const size_t emb_row = row_bytes(w.token_embd.type, E);
  for (int t = 0; t < T; ++t) {
    const int32_t id = batch.token[t];
    if (id < 0 || id >= c.n_vocab) fail("token id {} is outside the vocabulary (0..{})", id, c.n_vocab - 1);
    kernels::dequantize_row(w.token_embd.type, static_cast<const uint8_t*>(w.token_embd.data) + emb_row * id,
                            st.x_.data() + static_cast<size_t>(t) * E, E);
  }
  dbg("inp_embd", -1, st.x_.data(), E);

  // Rotation angles per token, shared by every layer and head. Computed in
  // double: position x frequency loses precision in float at long contexts.
  const int half = c.n_rot / 2;
  double* inv_freq = st.rope_inv_freq_.data();  // per rotary pair; the same for every token
  for (int i = 0; i < half; ++i) {
    inv_freq[i] = std::pow(static_cast<double>(c.rope_freq_base), -2.0 * i / c.n_rot) * c.rope_freq_scale;
    if (!w.rope_freqs.empty()) inv_freq[i] /= w.rope_freqs[i];
  }
  for (int t = 0; t < T; ++t) {
    for (int i = 0; i < half; ++i) {
      const double theta = static_cast<double>(batch.pos[t]) * inv_freq[i];
      st.rope_cos_[static_cast<size_t>(t) * half + i] = static_cast<float>(std::cos(theta));
      st.rope_sin_[static_cast<size_t>(t) * half + i] = static_cast<float>(std::sin(theta));
    }
  }

  float* x = st.x_.data();
  float* xb = st.xb_.data();
  // The rows the layers compute: the whole batch, except in the last layer
  // (see below), where `rows` may become the subset whose outputs are read.
  const Batch* rows = &batch;
  int R = T;
  // xb = RMSNorm(x) with weights nw, and the residual x += xb, row by row.
  auto norm_into_xb = [&](std::span<const float> nw) {
    parallel_rows(R, kRowsPerSection, pool, [&](int t0, int t1) {
      const size_t a = static_cast<size_t>(t0) * E;
      rmsnorm_rows(xb + a, x + a, nw, t1 - t0, E, c.rms_norm_eps);
    });
  };
  auto add_xb_into_x = [&] {
    parallel_rows(R, kRowsPerSection, pool, [&](int t0, int t1) {
      const size_t a = static_cast<size_t>(t0) * E;
      add_into(x + a, xb + a, static_cast<size_t>(t1 - t0) * E);
    });
  };
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& L = w.layers[l];
    // Attention block.
    norm_into_xb(L.attn_norm);
    dbg("attn_norm", l, xb, E);
    const kernels::MatmulOutput qkv[] = {{&L.wq, st.q_.data(), Q}, {&L.wk, st.k_.data(), KV}, {&L.wv, st.v_.data(), KV}};
    kernels::matmul_multi(qkv, xb, E, T, pool);
    // Per token: biases, QK-norm, RoPE, then K and V into the cache.
    auto qkv_post = [&](int t0, int t1) {
      const int n = t1 - t0;
      float* q = st.q_.data() + static_cast<size_t>(t0) * Q;
      float* k = st.k_.data() + static_cast<size_t>(t0) * KV;
      add_bias(q, L.bq, n, Q);
      add_bias(k, L.bk, n, KV);
      add_bias(st.v_.data() + static_cast<size_t>(t0) * KV, L.bv, n, KV);
      if (c.has_qk_norm) {
        rmsnorm_rows(q, q, L.q_norm, n * c.n_head, D, c.rms_norm_eps);
        rmsnorm_rows(k, k, L.k_norm, n * c.n_head_kv, D, c.rms_norm_eps);
      }
      const float* cs = st.rope_cos_.data() + static_cast<size_t>(t0) * half;
      const float* sn = st.rope_sin_.data() + static_cast<size_t>(t0) * half;
      rope_rows(q, n, c.n_head, D, c.n_rot, c.rope_layout, cs, sn);
      rope_rows(k, n, c.n_head_kv, D, c.n_rot, c.rope_layout, cs, sn);
      store_kv(c, l, batch, st.k_.data(), st.v_.data(), kv, t0, t1);
    };
    parallel_rows(T, 2, pool, qkv_post);
    dbg("q", l, st.q_.data(), Q);
    dbg("k", l, st.k_.data(), KV);
    dbg("v", l, st.v_.data(), KV);
    // In the last layer only the rows whose outputs are read need the rest:
    // every row has stored its K and V above, but nothing reads a row's
    // attention output or feed-forward there except its own logits. So when
    // the caller wants logits for some rows and no hidden states (a prompt
    // wants its last token's only), the layer goes on with those rows,
    // gathered to the front (a row never moves back), and with none when
    // none is read: 1/n_layer of a prompt's work. Skipped under a debug hook,
    // which compares whole tensors.
    if (l == c.n_layer - 1 && hidden == nullptr && !st.debug && gather_output_rows(batch, st.out_batch_, st.out_src_) < T) {
      rows = &st.out_batch_;
      R = rows->n_tokens();
      if (R == 0) return 0;
      for (int i = 0; i < R; ++i) {
        const int t = st.out_src_[i];
        if (t == i) continue;
        std::copy_n(st.q_.data() + static_cast<size_t>(t) * Q, Q, st.q_.data() + static_cast<size_t>(i) * Q);
        std::copy_n(x + static_cast<size_t>(t) * E, E, x + static_cast<size_t>(i) * E);
      }
    }
    attention(c, l, *rows, kv, st.q_.data(), st.att_.data(), st.attn_scratch_, pool);
    dbg("kqv_out", l, st.att_.data(), Q);
    kernels::matmul(L.wo, st.att_.data(), Q, R, xb, E, pool);
    dbg("attn_out", l, xb, E);
    add_xb_into_x();

    // Feed-forward block.
    norm_into_xb(L.ffn_norm);
    dbg("ffn_norm", l, xb, E);
    const kernels::MatmulOutput gate_up[] = {{&L.w_gate, st.hb_.data(), F}, {&L.w_up, st.hb2_.data(), F}};
    kernels::matmul_multi(gate_up, xb, E, R, pool);
    swiglu_rows(st.hb_.data(), st.hb2_.data(), R, F, pool);
    kernels::matmul(L.w_down, st.hb_.data(), F, R, xb, E, pool);
    dbg("ffn_out", l, xb, E);
    add_xb_into_x();
    dbg("l_out", l, x, E);
  }

  // Final norm, then logits only for the rows that need them.
  if (hidden != nullptr) rmsnorm_rows(hidden, x, w.output_norm, T, E, c.rms_norm_eps);
  int n_out = 0;
  for (int t = 0; t < R; ++t) {
    if (!rows->want_logits[t]) continue;
    rmsnorm(st.out_rows_.data() + static_cast<size_t>(n_out) * E, x + static_cast<size_t>(t) * E, w.output_norm, E,
            c.rms_norm_eps);
    ++n_out;
  }
  if (n_out > 0 && logits != nullptr) {
    if (st.debug) st.debug("result_norm", -1, st.out_rows_.data(), n_out, E);
    kernels::matmul(w.output, st.out_rows_.data(), E, n_out, logits, c.n_vocab, pool);
  }
  return n_out;
}

}  // namespace pl
