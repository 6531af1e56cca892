// AVX2 (+FMA+F16C) GEMM for float weight types against fp32 activations:
// register tiles of 3 rows x 4 tokens of 8-lane partial sums (16 ymm
// registers: 12 accumulators, 3 weight rows, 1 activation), reduced at the end.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/kernels_internal.h"

namespace pl::kernels::detail::avx2 {
namespace {

inline __m256 tail_load_ps(const float* p, int64_t n) {
  alignas(32) float buf[8] = {};
  for (int64_t i = 0; i < n; ++i) buf[i] = p[i];
  return _mm256_load_ps(buf);
}

struct LoadF32 {
  static constexpr size_t kElemBytes = 4;
  static __m256 load(const uint8_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
  static __m256 load_tail(const uint8_t* p, int64_t n) { return tail_load_ps(reinterpret_cast<const float*>(p), n); }
};
struct LoadF16 {
  static constexpr size_t kElemBytes = 2;
  static __m256 load(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static __m256 load_tail(const uint8_t* p, int64_t n) {
    alignas(16) uint16_t buf[8] = {};
    for (int64_t i = 0; i < n; ++i) std::memcpy(&buf[i], p + 2 * i, 2);
    return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(buf)));
  }
};
struct LoadBF16 {
  static constexpr size_t kElemBytes = 2;
  static __m256 widen(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }
  static __m256 load(const uint8_t* p) { return widen(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static __m256 load_tail(const uint8_t* p, int64_t n) {
    alignas(16) uint16_t buf[8] = {};
    for (int64_t i = 0; i < n; ++i) std::memcpy(&buf[i], p + 2 * i, 2);
    return widen(_mm_load_si128(reinterpret_cast<const __m128i*>(buf)));
  }
};

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <class L, int R, int T>
void tile(const uint8_t* w, size_t rb, const float* x, size_t xs, int64_t n, float* y, int64_t ldy) {
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    __m256 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = L::load(w + r * rb + k * L::kElemBytes);
    for (int t = 0; t < T; ++t) {
      const __m256 xv = _mm256_loadu_ps(x + t * xs + k);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  if (k < n) {
    __m256 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = L::load_tail(w + r * rb + k * L::kElemBytes, n - k);
    for (int t = 0; t < T; ++t) {
      const __m256 xv = tail_load_ps(x + t * xs + k, n - k);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  for (int t = 0; t < T; ++t)
    for (int r = 0; r < R; ++r) y[t * ldy + r] = hsum8(acc[r][t]);
}

template <class L, int T>
void rows_for_tokens(const GemmArgs& a, int64_t r0, int64_t r1, int64_t t0) {
  const float* x = reinterpret_cast<const float*>(a.xa + t0 * a.xa_row_bytes);
  const size_t xs = a.xa_row_bytes / sizeof(float);
  float* y = a.y + t0 * a.ldy;
  int64_t r = r0;
  for (; r + 3 <= r1; r += 3) tile<L, 3, T>(a.w + r * a.w_row_bytes, a.w_row_bytes, x, xs, a.n_cols, y + r, a.ldy);
  for (; r < r1; ++r) tile<L, 1, T>(a.w + r * a.w_row_bytes, a.w_row_bytes, x, xs, a.n_cols, y + r, a.ldy);
}

template <class L>
void gemm_f(const GemmArgs& a, int64_t r0, int64_t r1, void*) {
  if (a.n_tok == 1) {
    const float* x = reinterpret_cast<const float*>(a.xa);
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) tile<L, 4, 1>(a.w + r * a.w_row_bytes, a.w_row_bytes, x, 0, a.n_cols, a.y + r, a.ldy);
    for (; r < r1; ++r) tile<L, 1, 1>(a.w + r * a.w_row_bytes, a.w_row_bytes, x, 0, a.n_cols, a.y + r, a.ldy);
    return;
  }
  int64_t t = 0;
  for (; t + 4 <= a.n_tok; t += 4) rows_for_tokens<L, 4>(a, r0, r1, t);
  switch (a.n_tok - t) {
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

}  // namespace pl::kernels::detail::avx2
