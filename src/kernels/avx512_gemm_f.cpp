// AVX-512 GEMM for float weight types (F32, F16, BF16) against fp32
// activations.
//
// Small batches (decode): register tiles of R rows x T tokens along K, each
// step loading 16 elements of R weight rows (converted to fp32 in registers)
// and doing R*T FMAs into 16-lane partial sums, reduced once at the end.
//
// Larger batches: the weights of a block of rows are converted and transposed
// once per K chunk into an fp32 panel P[k][32 rows] (L2), and each step does
// acc[t] += P[k] * broadcast(x[t][k]) for 2 x 16 rows and 12 tokens held in
// 24 registers, so every weight load feeds 12 FMAs and every activation load 2.
#include <immintrin.h>

#include <algorithm>
#include <type_traits>

#include "kernels/kernels_internal.h"

namespace pl::kernels::detail::avx512 {
namespace {

struct LoadF32 {
  static constexpr size_t kElemBytes = 4;
  static __m512 load(const uint8_t* p) { return _mm512_loadu_ps(p); }
  static __m512 load_mask(const uint8_t* p, __mmask16 k) { return _mm512_maskz_loadu_ps(k, p); }
};
struct LoadF16 {
  static constexpr size_t kElemBytes = 2;
  static __m512 load(const uint8_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static __m512 load_mask(const uint8_t* p, __mmask16 k) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, p)); }
};
struct LoadBF16 {
  static constexpr size_t kElemBytes = 2;
  static __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  static __m512 load(const uint8_t* p) { return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static __m512 load_mask(const uint8_t* p, __mmask16 k) { return widen(_mm256_maskz_loadu_epi16(k, p)); }
};

template <class L, int R, int T>
void tile(const uint8_t* w, size_t rb, const float* x, size_t xs, int64_t n, float* y, int64_t ldy) {
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    __m512 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = L::load(w + r * rb + k * L::kElemBytes);
    for (int t = 0; t < T; ++t) {
      const __m512 xv = _mm512_loadu_ps(x + t * xs + k);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  if (k < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - k)) - 1);
    __m512 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = L::load_mask(w + r * rb + k * L::kElemBytes, m);
    for (int t = 0; t < T; ++t) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + t * xs + k);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  for (int t = 0; t < T; ++t)
    for (int r = 0; r < R; ++r) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

// Rows [r0, r1) for tokens [t0, t0 + T).
template <class L, int T>
void rows_for_tokens(const GemmArgs& a, int64_t r0, int64_t r1, int64_t t0) {
  const float* x = reinterpret_cast<const float*>(a.xa + t0 * a.xa_row_bytes);
  const size_t xs = a.xa_row_bytes / sizeof(float);
  float* y = a.y + t0 * a.ldy;
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) tile<L, 4, T>(a.w + r * a.w_row_bytes, a.w_row_bytes, x, xs, a.n_cols, y + r, a.ldy);
  for (; r < r1; ++r) tile<L, 1, T>(a.w + r * a.w_row_bytes, a.w_row_bytes, x, xs, a.n_cols, y + r, a.ldy);
}

// ---- panel path ----

constexpr int64_t kKChunk = 256;   // K elements per panel chunk
constexpr int64_t kBlockPairs = 8;  // 32-row pairs sharing one activation tile
constexpr int kPanelTok = 12;       // tokens per register tile
constexpr int64_t kXStride = kKChunk + 16;  // floats between token rows of the copied activation chunk

// Transposes 16 rows x 16 floats in place: v[i] lane j <- v[j] lane i.
inline void transpose16(__m512 v[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    v[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    v[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    v[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    v[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(v[i], v[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(v[i], v[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_f32x4(v[i + 8], v[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(v[i + 8], v[i + 12], 0xDD);
  }
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    v[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    v[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
    v[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
  }
}

// P[k][0..31] = rows row0..row0+31 (rows >= n_valid: zero), k in [k0, k0 + nk).
// Each row is first converted into `stage` ([16][kXStride] fp32) reading it
// sequentially: weight rows are often a multiple of 4 KB apart, and reading 16
// of them in lockstep would thrash one L1 set.
template <class L>
void build_panel(const GemmArgs& a, int64_t row0, int n_valid, int64_t k0, int64_t nk, float* P, float* stage) {
  for (int g = 0; g < 2; ++g) {
    for (int r = 0; r < 16; ++r) {
      const int row = 16 * g + r;
      float* dst = stage + r * kXStride;
      if (row >= n_valid) {
        for (int64_t kk = 0; kk < nk; kk += 16) _mm512_store_ps(dst + kk, _mm512_setzero_ps());
        continue;
      }
      const uint8_t* src = a.w + static_cast<size_t>(row0 + row) * a.w_row_bytes + k0 * L::kElemBytes;
      int64_t kk = 0;
      for (; kk + 16 <= nk; kk += 16) _mm512_store_ps(dst + kk, L::load(src + kk * L::kElemBytes));
      if (kk < nk)
        _mm512_store_ps(dst + kk, L::load_mask(src + kk * L::kElemBytes, static_cast<__mmask16>((1u << (nk - kk)) - 1)));
    }
    for (int64_t kk = 0; kk < nk; kk += 16) {
      __m512 v[16];
      for (int r = 0; r < 16; ++r) v[r] = _mm512_load_ps(stage + r * kXStride + kk);
      transpose16(v);
      const int64_t n = std::min<int64_t>(16, nk - kk);
      for (int64_t i = 0; i < n; ++i) _mm512_store_ps(P + (kk + i) * 32 + 16 * g, v[i]);
    }
  }
}

// y[t][row0..+32] (+)= sum over the chunk for T tokens; xt is a copy of the
// activation chunk with row stride kXStride: rows of x a power of two apart
// would all land in one L1 set.
template <int T>
void panel_tile(const float* P, int64_t nk, const float* xt, float* y, int64_t ldy, int n_valid, bool first) {
  __m512 acc0[T], acc1[T];
  for (int t = 0; t < T; ++t) acc0[t] = _mm512_setzero_ps(), acc1[t] = _mm512_setzero_ps();
  for (int64_t k = 0; k < nk; ++k) {
    const __m512 w0 = _mm512_load_ps(P + 32 * k), w1 = _mm512_load_ps(P + 32 * k + 16);
    for (int t = 0; t < T; ++t) {
      const __m512 xb = _mm512_set1_ps(xt[t * kXStride + k]);
      acc0[t] = _mm512_fmadd_ps(w0, xb, acc0[t]);
      acc1[t] = _mm512_fmadd_ps(w1, xb, acc1[t]);
    }
  }
  const __mmask16 m0 = static_cast<__mmask16>(n_valid >= 16 ? 0xFFFF : (1u << n_valid) - 1);
  const __mmask16 m1 = static_cast<__mmask16>(n_valid >= 32 ? 0xFFFF : n_valid <= 16 ? 0 : (1u << (n_valid - 16)) - 1);
  for (int t = 0; t < T; ++t) {
    float* yt = y + t * ldy;
    if (!first) {
      acc0[t] = _mm512_add_ps(acc0[t], _mm512_maskz_loadu_ps(m0, yt));
      acc1[t] = _mm512_add_ps(acc1[t], _mm512_maskz_loadu_ps(m1, yt + 16));
    }
    _mm512_mask_storeu_ps(yt, m0, acc0[t]);
    _mm512_mask_storeu_ps(yt + 16, m1, acc1[t]);
  }
}

inline void copy_floats(float* dst, const float* src, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_store_ps(dst + i, _mm512_loadu_ps(src + i));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_maskz_loadu_ps(m, src + i));
  }
}

template <class L>
void gemm_f_panel(const GemmArgs& a, int64_t r0, int64_t r1, float* panels) {
  float* xt = panels + kBlockPairs * kKChunk * 32;  // [kPanelTok][kXStride]
  float* stage = xt + kPanelTok * kXStride;         // [16][kXStride]
  const float* x = reinterpret_cast<const float*>(a.xa);
  const size_t xs = a.xa_row_bytes / sizeof(float);
  for (int64_t blk0 = r0; blk0 < r1; blk0 += 32 * kBlockPairs) {
    const int64_t np = std::min<int64_t>(kBlockPairs, (r1 - blk0 + 31) / 32);
    for (int64_t k0 = 0; k0 < a.n_cols; k0 += kKChunk) {
      const int64_t nk = std::min(kKChunk, a.n_cols - k0);
      for (int64_t p = 0; p < np; ++p) {
        const int64_t row0 = blk0 + 32 * p;
        build_panel<L>(a, row0, static_cast<int>(std::min<int64_t>(32, r1 - row0)), k0, nk, panels + p * kKChunk * 32,
                       stage);
      }
      int64_t t = 0;
      auto run = [&](auto tile_tok) {
        constexpr int T = decltype(tile_tok)::value;
        for (int tt = 0; tt < T; ++tt) copy_floats(xt + tt * kXStride, x + (t + tt) * xs + k0, nk);
        for (int64_t p = 0; p < np; ++p) {
          const int64_t row0 = blk0 + 32 * p;
          panel_tile<T>(panels + p * kKChunk * 32, nk, xt, a.y + t * a.ldy + row0, a.ldy,
                        static_cast<int>(std::min<int64_t>(32, r1 - row0)), k0 == 0);
        }
        t += T;
      };
      while (a.n_tok - t >= kPanelTok) run(std::integral_constant<int, kPanelTok>{});
      if (a.n_tok - t >= 8) run(std::integral_constant<int, 8>{});
      if (a.n_tok - t >= 4) run(std::integral_constant<int, 4>{});
      if (a.n_tok - t >= 2) run(std::integral_constant<int, 2>{});
      if (a.n_tok - t >= 1) run(std::integral_constant<int, 1>{});
    }
  }
}

template <class L>
void gemm_f(const GemmArgs& a, int64_t r0, int64_t r1, void* scratch) {
  // Building the panels pays off from ~32 tokens: below, the register tiles
  // run faster (BatchStep/F16: 208 against 449 ms at 8 tokens, 442 against
  // 522 at 16).
  if (a.n_tok >= 32) {
    gemm_f_panel<L>(a, r0, r1, static_cast<float*>(scratch));
    return;
  }
  if (a.n_tok == 1) {
    // One token: 8 rows at a time keeps more loads in flight on the memory-bound path.
    const float* x = reinterpret_cast<const float*>(a.xa);
    int64_t r = r0;
    for (; r + 8 <= r1; r += 8) tile<L, 8, 1>(a.w + r * a.w_row_bytes, a.w_row_bytes, x, 0, a.n_cols, a.y + r, a.ldy);
    for (; r < r1; ++r) tile<L, 1, 1>(a.w + r * a.w_row_bytes, a.w_row_bytes, x, 0, a.n_cols, a.y + r, a.ldy);
    return;
  }
  int64_t t = 0;
  for (; t + 5 <= a.n_tok; t += 5) rows_for_tokens<L, 5>(a, r0, r1, t);
  switch (a.n_tok - t) {
    case 4: rows_for_tokens<L, 4>(a, r0, r1, t); break;
    case 3: rows_for_tokens<L, 3>(a, r0, r1, t); break;
    case 2: rows_for_tokens<L, 2>(a, r0, r1, t); break;
    case 1: rows_for_tokens<L, 1>(a, r0, r1, t); break;
    default: break;
  }
}

template <class L>
float vec_dot_f(int64_t n, const void* w, const void* x) {
  float y;
  tile<L, 1, 1>(static_cast<const uint8_t*>(w), 0, static_cast<const float*>(x), 0, n, &y, 0);
  return y;
}

}  // namespace

GemmFn gemm_f_fn(DType t) {
  switch (t) {
    case DType::F32: return &gemm_f<LoadF32>;
    case DType::F16: return &gemm_f<LoadF16>;
    case DType::BF16: return &gemm_f<LoadBF16>;
    default: return nullptr;
  }
}

VecDotFn vec_dot_f_fn(DType t) {
  switch (t) {
    case DType::F32: return &vec_dot_f<LoadF32>;
    case DType::F16: return &vec_dot_f<LoadF16>;
    case DType::BF16: return &vec_dot_f<LoadBF16>;
    default: return nullptr;
  }
}

}  // namespace pl::kernels::detail::avx512
