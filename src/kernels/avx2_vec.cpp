// AVX2 (+FMA+F16C) level: vector helpers, activation quantization,
// dequantization, single-row dot products, and the level's traits table.
// The tiled GEMMs live in avx2_gemm_q.cpp / avx2_gemm_f.cpp.
#include <immintrin.h>

#include <array>
#include <cmath>
#include <cstring>

#include "kernels/fp16.h"
#include "kernels/kernels_internal.h"
#include "kernels/simd_exp.h"

namespace pl::kernels::detail {
namespace avx2 {

GemmFn gemm_q_fn(DType t);
GemmFn gemm_f_fn(DType t);
VecDotFn vec_dot_f_fn(DType t);

namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }
inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hmax8(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline int hsum8i(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// ---- vector helpers ----

void fp16_to_fp32_row(const uint16_t* s, float* d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  for (; i < n; ++i) d[i] = half_to_float(s[i]);
}

void fp32_to_fp16_row(const float* s, uint16_t* d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) d[i] = float_to_half(s[i]);
}

float dot_f32(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  float s = hsum8(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

float dot_f16_f32(const uint16_t* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i))),
                           _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i + 8))),
                           _mm256_loadu_ps(b + i + 8), acc1);
  }
  float s = hsum8(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += half_to_float(a[i]) * b[i];
  return s;
}

void axpy_f16_f32(float a, const uint16_t* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, xv, _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * half_to_float(x[i]);
}

// gate = silu(gate) * up = gate / (1 + e^-gate) * up. Every element takes the
// same vector path (masked at the tail), so a value does not depend on where
// it sits in the batch.
void swiglu(float* gate, const float* up, int64_t n) {
  const __m256 nlog2e = _mm256_set1_ps(-1.4426950408889634f), one = _mm256_set1_ps(1.0f);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int64_t i = 0; i < n; i += 8) {
    const int left = static_cast<int>(n - i < 8 ? n - i : 8);
    const __m256i k = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lane);
    const __m256 g = _mm256_maskload_ps(gate + i, k);
    const __m256 e = exp2_ymm(_mm256_mul_ps(g, nlog2e));
    const __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, e));
    _mm256_maskstore_ps(gate + i, k, _mm256_mul_ps(s, _mm256_maskload_ps(up + i, k)));
  }
}

// The sum of squares in double, four chains (see the AVX-512 level).
void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps) {
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd(), s2 = _mm256_setzero_pd(), s3 = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
    const __m256d a0 = _mm256_cvtps_pd(_mm256_castps256_ps128(a)), a1 = _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1));
    const __m256d b0 = _mm256_cvtps_pd(_mm256_castps256_ps128(b)), b1 = _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1));
    s0 = _mm256_fmadd_pd(a0, a0, s0);
    s1 = _mm256_fmadd_pd(a1, a1, s1);
    s2 = _mm256_fmadd_pd(b0, b0, s2);
    s3 = _mm256_fmadd_pd(b1, b1, s3);
  }
  double ss = 0.0;
  for (; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const __m256d s = _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3));
  const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
  ss += _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
  const float inv = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
  const __m256 vinv = _mm256_set1_ps(inv);
  for (i = 0; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vinv), _mm256_loadu_ps(w + i)));
  for (; i < n; ++i) out[i] = x[i] * inv * w[i];
}

// ---- activation quantization (bit-exact with quantize_act_ref) ----

// 32 floats * id rounded to nearest even, stored as int8 in order; returns the
// sums of elements 0-15 and 16-31.
inline void quantize32(const float* x, __m256 vid, int8_t* out, int& s0, int& s1) {
  const __m256i q0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), vid));
  const __m256i q1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), vid));
  const __m256i q2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), vid));
  const __m256i q3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), vid));
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                      _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  s0 = hsum8i(_mm256_add_epi32(q0, q1));
  s1 = hsum8i(_mm256_add_epi32(q2, q3));
}

inline float amax_of(const float* x, int n) {
  __m256 m = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 8) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + i)));
  return hmax8(m);
}

void quantize_act(DType wt, const float* x, void* dst, int64_t n) {
  const int off = act_offset(wt);
  if (block_elems(wt) == kQK) {
    auto* b = static_cast<ActQ8x32*>(dst);
    for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
      const float amax = amax_of(x, kQK);
      const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
      int s0, s1;
      quantize32(x, _mm256_set1_ps(id), b[i].qs, s0, s1);
      finish_act_block(b[i], wt, off, i, amax, s0 + s1);
    }
    return;
  }
  auto* b = static_cast<ActQ8x256*>(dst);
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    const float amax = amax_of(x, kQKK);
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    std::memset(&b[i], 0, sizeof(ActQ8x256));
    for (int g = 0; g < 8; ++g) {
      int s0, s1;
      quantize32(x + 32 * g, _mm256_set1_ps(id), b[i].qs + 32 * g, s0, s1);
      b[i].bias16[2 * g] = -off * s0;
      b[i].bias16[2 * g + 1] = -off * s1;
      b[i].sum32[g] = static_cast<float>(s0 + s1);
    }
    b[i].d = amax / 127.0f;
  }
}

// ---- block unpacking shared by dequantization and dot products ----

// Levels of a legacy block as 32 bytes in element order.
template <class B, bool kFive>
inline __m256i legacy_levels(const B& b) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
  const __m128i m4 = _mm_set1_epi8(15);
  __m256i v = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
  if constexpr (kFive) {
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    // byte i gets bit i of qh: spread each byte of qh over 8 bytes, test one bit per byte
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)),
                                               _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202,
                                                                  0x0303030303030303));
    const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
    const __m256i hit = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    v = _mm256_or_si256(v, _mm256_and_si256(hit, _mm256_set1_epi8(16)));
  }
  return v;
}

// Level bytes of K-quant sub-block j (Q4_K/Q5_K).
inline __m256i kx_levels(const uint8_t* qs, const uint8_t* qh, int j) {
  __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * (j / 2)));
  q = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(15));
  if (qh != nullptr) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
    const __m256i bit = _mm256_set1_epi8(static_cast<char>(1 << j));
    const __m256i hit = _mm256_cmpeq_epi8(_mm256_and_si256(h, bit), bit);
    q = _mm256_or_si256(q, _mm256_and_si256(hit, _mm256_set1_epi8(16)));
  }
  return q;
}

inline void q6_units(const uint8_t* ql, const uint8_t* qh, __m256i u[4]) {
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
  const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
  const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
  u[0] = _mm256_or_si256(_mm256_and_si256(a, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
  u[1] = _mm256_or_si256(_mm256_and_si256(b, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
  u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), m4), _mm256_and_si256(h, m30));
  u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4), _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
}

// 32 level bytes -> 4 x 8 floats: y = step * (q - off) or step * q - off.
template <bool kSubThenMul>
inline void store_levels(__m256i q, __m256 step, __m256 off, float* y) {
  alignas(32) uint8_t b[32];
  _mm256_store_si256(reinterpret_cast<__m256i*>(b), q);
  for (int k = 0; k < 4; ++k) {
    const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 8 * k))));
    _mm256_storeu_ps(y + 8 * k, kSubThenMul ? _mm256_mul_ps(step, _mm256_sub_ps(v, off))
                                            : _mm256_sub_ps(_mm256_mul_ps(step, v), off));
  }
}

// ---- dequantization ----

void to_float_f32(const void* src, float* y, int64_t n) { std::memcpy(y, src, static_cast<size_t>(n) * 4); }
void to_float_f16(const void* src, float* y, int64_t n) { fp16_to_fp32_row(static_cast<const uint16_t*>(src), y, n); }
void to_float_bf16(const void* src, float* y, int64_t n) {
  auto* s = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
    _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
  }
  for (; i < n; ++i) y[i] = bf16_to_float(s[i]);
}

template <class B, bool kFive, bool kMin>
void to_float_legacy(const void* src, float* y, int64_t n) {
  auto* b = static_cast<const B*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const __m256 d = _mm256_set1_ps(h2f(b[i].d));
    if constexpr (kMin) store_levels<false>(legacy_levels<B, kFive>(b[i]), d, _mm256_set1_ps(-h2f(b[i].m)), y);
    else store_levels<true>(legacy_levels<B, kFive>(b[i]), d, _mm256_set1_ps(kFive ? 16.0f : 8.0f), y);
  }
}

void to_float_q8_0(const void* src, float* y, int64_t n) {
  auto* b = static_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const __m256 d = _mm256_set1_ps(h2f(b[i].d));
    for (int k = 0; k < 4; ++k) {
      const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b[i].qs + 8 * k)));
      _mm256_storeu_ps(y + 8 * k, _mm256_mul_ps(d, _mm256_cvtepi32_ps(q)));
    }
  }
}

template <bool kFive>
void to_float_qx_k(const void* src, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const uint8_t *scales, *qs, *qh = nullptr;
    float d, dmin;
    if constexpr (kFive) {
      auto& b = static_cast<const BlockQ5_K*>(src)[i];
      scales = b.scales, qs = b.qs, qh = b.qh, d = h2f(b.d), dmin = h2f(b.dmin);
    } else {
      auto& b = static_cast<const BlockQ4_K*>(src)[i];
      scales = b.scales, qs = b.qs, d = h2f(b.d), dmin = h2f(b.dmin);
    }
    for (int j = 0; j < 8; ++j, y += 32) {
      int sc, m;
      kquant_scale_min(scales, j, sc, m);
      store_levels<false>(kx_levels(qs, qh, j), _mm256_set1_ps(d * static_cast<float>(sc)),
                          _mm256_set1_ps(dmin * static_cast<float>(m)), y);
    }
  }
}

void to_float_q6_k(const void* src, float* y, int64_t n) {
  auto* b = static_cast<const BlockQ6_K*>(src);
  const __m256 off = _mm256_set1_ps(32.0f);
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = h2f(b[i].d);
    for (int h = 0; h < 2; ++h) {
      __m256i u[4];
      q6_units(b[i].ql + 64 * h, b[i].qh + 32 * h, u);
      for (int k = 0; k < 4; ++k, y += 32) {
        alignas(32) float tmp[32];
        store_levels<true>(u[k], _mm256_set1_ps(1.0f), off, tmp);  // q - 32, exact
        const float s0 = d * static_cast<float>(b[i].scales[8 * h + 2 * k]);
        const float s1 = d * static_cast<float>(b[i].scales[8 * h + 2 * k + 1]);
        for (int e = 0; e < 16; e += 8) {
          _mm256_storeu_ps(y + e, _mm256_mul_ps(_mm256_set1_ps(s0), _mm256_load_ps(tmp + e)));
          _mm256_storeu_ps(y + 16 + e, _mm256_mul_ps(_mm256_set1_ps(s1), _mm256_load_ps(tmp + 16 + e)));
        }
      }
    }
  }
}

// ---- single-row dot products ----

inline __m256i dot_u8s8(__m256i w, __m256i x, __m256i acc) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1)));
}
inline __m256i lane0(int v) { return _mm256_zextsi128_si256(_mm_cvtsi32_si128(v)); }

template <class B, bool kFive, bool kMin>
float vec_dot_legacy(int64_t n, const void* w, const void* x) {
  auto* b = static_cast<const B*>(w);
  auto* a = static_cast<const ActQ8x32*>(x);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs));
    const __m256i isum = dot_u8s8(legacy_levels<B, kFive>(b[i]), xv, lane0(a[i].bias));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(h2f(b[i].d) * a[i].d), acc);
    if constexpr (kMin) mins += h2f(b[i].m) * a[i].dsum;
  }
  return hsum8(acc) + mins;
}

float vec_dot_q8_0(int64_t n, const void* w, const void* x) {
  auto* b = static_cast<const BlockQ8_0*>(w);
  auto* a = static_cast<const ActQ8x32*>(x);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK; ++i) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs));
    const __m256i isum = dot_u8s8(_mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv), _mm256_setzero_si256());
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(h2f(b[i].d) * a[i].d), acc);
  }
  return hsum8(acc);
}

template <bool kFive>
float vec_dot_qx_k(int64_t n, const void* w, const void* x) {
  auto* a = static_cast<const ActQ8x256*>(x);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const uint8_t *scales, *qs, *qh = nullptr;
    float d, dmin;
    if constexpr (kFive) {
      auto& b = static_cast<const BlockQ5_K*>(w)[i];
      scales = b.scales, qs = b.qs, qh = b.qh, d = h2f(b.d), dmin = h2f(b.dmin);
    } else {
      auto& b = static_cast<const BlockQ4_K*>(w)[i];
      scales = b.scales, qs = b.qs, d = h2f(b.d), dmin = h2f(b.dmin);
    }
    __m256 sb = _mm256_setzero_ps();
    float msb = 0.0f;
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      kquant_scale_min(scales, j, sc, m);
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs + 32 * j));
      const __m256i isum = dot_u8s8(kx_levels(qs, qh, j), xv, _mm256_setzero_si256());
      sb = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * static_cast<float>(sc)), sb);
      msb += -(dmin * static_cast<float>(m)) * a[i].sum32[j];
    }
    acc = _mm256_fmadd_ps(sb, _mm256_set1_ps(a[i].d), acc);
    mins += a[i].d * msb;
  }
  return hsum8(acc) + mins;
}

float vec_dot_q6_k(int64_t n, const void* w, const void* x) {
  auto* b = static_cast<const BlockQ6_K*>(w);
  auto* a = static_cast<const ActQ8x256*>(x);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = h2f(b[i].d);
    __m256 sb = _mm256_setzero_ps();
    for (int h = 0; h < 2; ++h) {
      __m256i u[4];
      q6_units(b[i].ql + 64 * h, b[i].qh + 32 * h, u);
      for (int k = 0; k < 4; ++k) {
        const int j = 4 * h + k;
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs + 32 * j));
        const __m256i init = _mm256_setr_epi32(a[i].bias16[2 * j], 0, 0, 0, a[i].bias16[2 * j + 1], 0, 0, 0);
        const __m256i isum = dot_u8s8(u[k], xv, init);
        const __m256 sc = _mm256_set_m128(_mm_set1_ps(d * static_cast<float>(b[i].scales[2 * j + 1])),
                                          _mm_set1_ps(d * static_cast<float>(b[i].scales[2 * j])));
        sb = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), sc, sb);
      }
    }
    acc = _mm256_fmadd_ps(sb, _mm256_set1_ps(a[i].d), acc);
  }
  return hsum8(acc);
}

template <DType kT>
void from_float_ref(const float* src, void* dst, int64_t n) {
  quantize_row_ref(kT, src, dst, n);
}

template <DType kT>
TypeTraits make(ActFormat act, ToFloatFn tf, VecDotFn vd, GemmFn gemm) {
  TypeTraits t;
  t.type = kT;
  t.act = act;
  t.to_float = tf;
  t.from_float = &from_float_ref<kT>;
  t.vec_dot = vd;
  t.gemm = gemm;
  t.gemm_min_tok = 1;
  t.row_align = act == ActFormat::F32 ? 3 : 8;
  return t;
}

const std::array<TypeTraits, 11>& traits_array() {
  static const std::array<TypeTraits, 11> a = {
      make<DType::F32>(ActFormat::F32, &to_float_f32, vec_dot_f_fn(DType::F32), gemm_f_fn(DType::F32)),
      make<DType::F16>(ActFormat::F32, &to_float_f16, vec_dot_f_fn(DType::F16), gemm_f_fn(DType::F16)),
      make<DType::BF16>(ActFormat::F32, &to_float_bf16, vec_dot_f_fn(DType::BF16), gemm_f_fn(DType::BF16)),
      make<DType::Q4_0>(ActFormat::Q8x32, &to_float_legacy<BlockQ4_0, false, false>,
                        &vec_dot_legacy<BlockQ4_0, false, false>, gemm_q_fn(DType::Q4_0)),
      make<DType::Q4_1>(ActFormat::Q8x32, &to_float_legacy<BlockQ4_1, false, true>,
                        &vec_dot_legacy<BlockQ4_1, false, true>, gemm_q_fn(DType::Q4_1)),
      make<DType::Q5_0>(ActFormat::Q8x32, &to_float_legacy<BlockQ5_0, true, false>,
                        &vec_dot_legacy<BlockQ5_0, true, false>, gemm_q_fn(DType::Q5_0)),
      make<DType::Q5_1>(ActFormat::Q8x32, &to_float_legacy<BlockQ5_1, true, true>,
                        &vec_dot_legacy<BlockQ5_1, true, true>, gemm_q_fn(DType::Q5_1)),
      make<DType::Q8_0>(ActFormat::Q8x32, &to_float_q8_0, &vec_dot_q8_0, gemm_q_fn(DType::Q8_0)),
      make<DType::Q4_K>(ActFormat::Q8x256, &to_float_qx_k<false>, &vec_dot_qx_k<false>, gemm_q_fn(DType::Q4_K)),
      make<DType::Q5_K>(ActFormat::Q8x256, &to_float_qx_k<true>, &vec_dot_qx_k<true>, gemm_q_fn(DType::Q5_K)),
      make<DType::Q6_K>(ActFormat::Q8x256, &to_float_q6_k, &vec_dot_q6_k, gemm_q_fn(DType::Q6_K)),
  };
  return a;
}

const TypeTraits* traits(DType t) {
  for (const TypeTraits& tr : traits_array())
    if (tr.type == t) return &tr;
  return nullptr;
}

}  // namespace
}  // namespace avx2

const LevelTable* avx2_table() {
  static const LevelTable table{
      CpuLevel::Avx2,
      &avx2::traits,
      VecTraits{&avx2::fp16_to_fp32_row, &avx2::fp32_to_fp16_row, &avx2::dot_f32, &avx2::dot_f16_f32,
                &avx2::axpy_f16_f32, &avx2::quantize_act, &avx2::swiglu, &avx2::rmsnorm},
  };
  return &table;
}

}  // namespace pl::kernels::detail
