// AVX-512 (F/BW/VL/DQ + VNNI, with F16C/FMA) level: vector helpers,
// activation quantization, dequantization, single-row dot products, and the
// level's traits table. The tiled GEMMs live in avx512_gemm_q.cpp / _f.cpp,
// the kernels over packed weights in avx512_gemm_packed.cpp.
#include <immintrin.h>

#include <array>
#include <cmath>
#include <cstring>

#include "kernels/avx512_reduce.h"
#include "kernels/fp16.h"
#include "kernels/kernels_internal.h"
#include "kernels/simd_exp.h"

namespace pl::kernels::detail {
namespace avx512 {

GemmFn gemm_q_fn(DType t);
GemmFn gemm_f_fn(DType t);
PackedGemmFn gemm_packed_fn(DType t);
VecDotFn vec_dot_f_fn(DType t);

namespace {

inline __mmask16 tail_mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1); }
inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
inline __m512 abs_ps(__m512 v) { return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7FFFFFFF))); }

// ---- vector helpers ----

void fp16_to_fp32_row(const uint16_t* s, float* d, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(d + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i))));
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    _mm512_mask_storeu_ps(d + i, k, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, s + i)));
  }
}

void fp32_to_fp16_row(const float* s, uint16_t* d, int64_t n) {
  constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i), _mm512_cvtps_ph(_mm512_loadu_ps(s + i), kRound));
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    _mm256_mask_storeu_epi16(d + i, k, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(k, s + i), kRound));
  }
}

float dot_f32(const float* a, const float* b, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? 0xFFFF : tail_mask(n - i);
    acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i), acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

float dot_f16_f32(const uint16_t* a, const float* b, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512i h = _mm512_loadu_si512(a + i);
    acc0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(h)), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1)), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? 0xFFFF : tail_mask(n - i);
    acc0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, a + i)), _mm512_maskz_loadu_ps(k, b + i), acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

void axpy_f16_f32(float a, const uint16_t* x, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 xv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)));
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, xv, _mm512_loadu_ps(y + i)));
  }
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 xv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, x + i));
    _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(va, xv, _mm512_maskz_loadu_ps(k, y + i)));
  }
}

// gate = silu(gate) * up = gate / (1 + e^-gate) * up. Every element takes the
// same vector path (masked at the tail), so a value does not depend on where
// it sits in the batch.
void swiglu(float* gate, const float* up, int64_t n) {
  const __m512 nlog2e = _mm512_set1_ps(-1.4426950408889634f), one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? 0xFFFF : tail_mask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(k, gate + i);
    const __m512 e = exp2_zmm(_mm512_mul_ps(g, nlog2e));
    const __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, e));
    _mm512_mask_storeu_ps(gate + i, k, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(k, up + i)));
  }
}

// The sum of squares in double: a float chain over a few thousand elements
// would lose ~1e-4 relative, and the scalar double chain is latency-bound
// (4 cycles an element: ~8% of an 8-token decode step went there).
void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps) {
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd(), s2 = _mm512_setzero_pd(), s3 = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
    const __m512d a0 = _mm512_cvtps_pd(_mm512_castps512_ps256(a)), a1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1));
    const __m512d b0 = _mm512_cvtps_pd(_mm512_castps512_ps256(b)), b1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(b, 1));
    s0 = _mm512_fmadd_pd(a0, a0, s0);
    s1 = _mm512_fmadd_pd(a1, a1, s1);
    s2 = _mm512_fmadd_pd(b0, b0, s2);
    s3 = _mm512_fmadd_pd(b1, b1, s3);
  }
  for (; i < n; i += 8) {
    const __mmask8 k = n - i >= 8 ? 0xFF : static_cast<__mmask8>((1u << (n - i)) - 1);
    const __m512d a = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(k, x + i));
    s0 = _mm512_fmadd_pd(a, a, s0);
  }
  const double ss = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3)));
  const __m512 inv = _mm512_set1_ps(1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps));
  for (i = 0; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? 0xFFFF : tail_mask(n - i);
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv);
    _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(k, w + i)));
  }
}

// ---- activation quantization (bit-exact with quantize_act_ref) ----

// 32-element blocks, 16 at a time: the blocks' max |x| and sums come out of
// two transposing reductions (lane k = block k) instead of 32 horizontal ones,
// each a chain of shuffles, and the 127 / amax divisions are one vector divide.
// In the 8-token decode step this ran serially, ~1 ms of ~42 (1.9 G floats/s).
void quantize_act16(DType wt, int off, const float* x, ActQ8x32* b, int64_t block0) {
  __m512 r[16];
#pragma GCC unroll 16
  for (int k = 0; k < 16; ++k) r[k] = _mm512_max_ps(abs_ps(_mm512_loadu_ps(x + 32 * k)), abs_ps(_mm512_loadu_ps(x + 32 * k + 16)));
  const __m512 vmax = reduce_rows16_max(r);
  alignas(64) float amax[16], id[16], sum[16];
  _mm512_store_ps(amax, vmax);
  const __mmask16 nonzero = _mm512_cmp_ps_mask(vmax, _mm512_setzero_ps(), _CMP_NEQ_UQ);
  _mm512_store_ps(id, _mm512_maskz_div_ps(nonzero, _mm512_set1_ps(127.0f), vmax));
#pragma GCC unroll 16
  for (int k = 0; k < 16; ++k) {
    const __m512 vid = _mm512_set1_ps(id[k]);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 32 * k), vid));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 32 * k + 16), vid));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(b[k].qs), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(b[k].qs + 16), _mm512_cvtepi32_epi8(q1));
    r[k] = _mm512_cvtepi32_ps(_mm512_add_epi32(q0, q1));  // |sum| <= 32 * 127: exact in float
  }
  _mm512_store_ps(sum, reduce_rows16_add(r));
  for (int k = 0; k < 16; ++k) finish_act_block(b[k], wt, off, block0 + k, amax[k], static_cast<int>(sum[k]));
}

void quantize_act(DType wt, const float* x, void* dst, int64_t n) {
  const int off = act_offset(wt);
  if (block_elems(wt) == kQK) {
    auto* b = static_cast<ActQ8x32*>(dst);
    const int64_t nb = n / kQK;
    int64_t i = 0;
    for (; i + 16 <= nb; i += 16) quantize_act16(wt, off, x + i * kQK, b + i, i);
    for (x += i * kQK; i < nb; ++i, x += kQK) {
      const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(abs_ps(v0), abs_ps(v1)));
      const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
      const __m512 vid = _mm512_set1_ps(id);
      const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(b[i].qs), _mm512_cvtepi32_epi8(q0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(b[i].qs + 16), _mm512_cvtepi32_epi8(q1));
      const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
      finish_act_block(b[i], wt, off, i, amax, sum);
    }
    return;
  }
  auto* b = static_cast<ActQ8x256*>(dst);
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    __m512 m = _mm512_setzero_ps();
    for (int g = 0; g < 16; ++g) m = _mm512_max_ps(m, abs_ps(_mm512_loadu_ps(x + 16 * g)));
    const float amax = _mm512_reduce_max_ps(m);
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    std::memset(&b[i], 0, sizeof(ActQ8x256));
    int s16[16];
    for (int g = 0; g < 16; ++g) {
      const __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * g), vid));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(b[i].qs + 16 * g), _mm512_cvtepi32_epi8(q));
      s16[g] = _mm512_reduce_add_epi32(q);
      b[i].bias16[g] = -off * s16[g];
    }
    b[i].d = amax / 127.0f;
    for (int g = 0; g < 8; ++g) b[i].sum32[g] = static_cast<float>(s16[2 * g] + s16[2 * g + 1]);
  }
}

// ---- dequantization ----

inline __m512 u8x16_to_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v)); }

template <DType kT>
void to_float(const void* src, float* y, int64_t n);

template <>
void to_float<DType::F32>(const void* src, float* y, int64_t n) {
  std::memcpy(y, src, static_cast<size_t>(n) * 4);
}
template <>
void to_float<DType::F16>(const void* src, float* y, int64_t n) {
  fp16_to_fp32_row(static_cast<const uint16_t*>(src), y, n);
}
template <>
void to_float<DType::BF16>(const void* src, float* y, int64_t n) {
  auto* s = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i)));
    _mm512_storeu_ps(y + i, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
  }
  for (; i < n; ++i) y[i] = bf16_to_float(s[i]);
}

// Legacy blocks: levels of elements 0-15 and 16-31 as two u8x16 vectors.
inline void legacy_levels(const uint8_t* qs, uint32_t qh, bool five, __m128i& lo, __m128i& hi) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m4 = _mm_set1_epi8(15);
  lo = _mm_and_si128(q, m4);
  hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
  if (five) {
    const __m128i s16 = _mm_set1_epi8(16);
    lo = _mm_mask_add_epi8(lo, static_cast<__mmask16>(qh & 0xFFFF), lo, s16);
    hi = _mm_mask_add_epi8(hi, static_cast<__mmask16>(qh >> 16), hi, s16);
  }
}

template <class B, bool kFive, bool kMin>
void to_float_legacy(const void* src, float* y, int64_t n) {
  auto* b = static_cast<const B*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    uint32_t qh = 0;
    if constexpr (kFive) std::memcpy(&qh, b[i].qh, 4);
    __m128i lo, hi;
    legacy_levels(b[i].qs, qh, kFive, lo, hi);
    const __m512 d = _mm512_set1_ps(h2f(b[i].d));
    if constexpr (kMin) {
      const __m512 m = _mm512_set1_ps(h2f(b[i].m));
      _mm512_storeu_ps(y, _mm512_add_ps(_mm512_mul_ps(d, u8x16_to_ps(lo)), m));
      _mm512_storeu_ps(y + 16, _mm512_add_ps(_mm512_mul_ps(d, u8x16_to_ps(hi)), m));
    } else {
      const __m512 off = _mm512_set1_ps(kFive ? 16.0f : 8.0f);
      _mm512_storeu_ps(y, _mm512_mul_ps(d, _mm512_sub_ps(u8x16_to_ps(lo), off)));
      _mm512_storeu_ps(y + 16, _mm512_mul_ps(d, _mm512_sub_ps(u8x16_to_ps(hi), off)));
    }
  }
}

template <>
void to_float<DType::Q8_0>(const void* src, float* y, int64_t n) {
  auto* b = static_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const __m512 d = _mm512_set1_ps(h2f(b[i].d));
    for (int h = 0; h < 2; ++h) {
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs + 16 * h));
      _mm512_storeu_ps(y + 16 * h, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q))));
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
    __m256i vqh = _mm256_setzero_si256();
    if constexpr (kFive) vqh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
    for (int j = 0; j < 8; ++j, y += 32) {
      int sc, m;
      kquant_scale_min(scales, j, sc, m);
      const __m512 step = _mm512_set1_ps(d * static_cast<float>(sc)), off = _mm512_set1_ps(dmin * static_cast<float>(m));
      __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * (j / 2)));
      q = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(15));
      if constexpr (kFive)
        q = _mm256_mask_add_epi8(q, _mm256_test_epi8_mask(vqh, _mm256_set1_epi8(static_cast<char>(1 << j))), q,
                                 _mm256_set1_epi8(16));
      _mm512_storeu_ps(y, _mm512_sub_ps(_mm512_mul_ps(step, u8x16_to_ps(_mm256_castsi256_si128(q))), off));
      _mm512_storeu_ps(y + 16, _mm512_sub_ps(_mm512_mul_ps(step, u8x16_to_ps(_mm256_extracti128_si256(q, 1))), off));
    }
  }
}

// The four 32-element units of a Q6_K half as unsigned levels (0..63).
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

template <>
void to_float<DType::Q6_K>(const void* src, float* y, int64_t n) {
  auto* b = static_cast<const BlockQ6_K*>(src);
  const __m512 off = _mm512_set1_ps(32.0f);
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = h2f(b[i].d);
    for (int h = 0; h < 2; ++h) {
      __m256i u[4];
      q6_units(b[i].ql + 64 * h, b[i].qh + 32 * h, u);
      for (int k = 0; k < 4; ++k, y += 32) {
        const __m512 s0 = _mm512_set1_ps(d * static_cast<float>(b[i].scales[8 * h + 2 * k]));
        const __m512 s1 = _mm512_set1_ps(d * static_cast<float>(b[i].scales[8 * h + 2 * k + 1]));
        _mm512_storeu_ps(y, _mm512_mul_ps(s0, _mm512_sub_ps(u8x16_to_ps(_mm256_castsi256_si128(u[k])), off)));
        _mm512_storeu_ps(y + 16, _mm512_mul_ps(s1, _mm512_sub_ps(u8x16_to_ps(_mm256_extracti128_si256(u[k], 1)), off)));
      }
    }
  }
}

// ---- single-row dot products against quantized activations ----

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline __m256i lane0(int v) { return _mm256_zextsi128_si256(_mm_cvtsi32_si128(v)); }

template <class B, bool kFive, bool kMin>
float vec_dot_legacy(int64_t n, const void* w, const void* x) {
  auto* b = static_cast<const B*>(w);
  auto* a = static_cast<const ActQ8x32*>(x);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    uint32_t qh = 0;
    if constexpr (kFive) std::memcpy(&qh, b[i].qh, 4);
    __m128i lo, hi;
    legacy_levels(b[i].qs, qh, kFive, lo, hi);
    const __m256i wv = _mm256_set_m128i(hi, lo);
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs));
    const __m256i isum = _mm256_dpbusd_epi32(lane0(a[i].bias), wv, xv);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(h2f(b[i].d) * a[i].d), acc);
    if constexpr (kMin) mins += h2f(b[i].m) * a[i].dsum;
  }
  return hsum8(acc) + mins;
}

float vec_dot_q8_0(int64_t n, const void* w, const void* x) {
  auto* b = static_cast<const BlockQ8_0*>(w);
  auto* a = static_cast<const ActQ8x32*>(x);
  __m256 acc = _mm256_setzero_ps();
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t i = 0; i < n / kQK; ++i) {
    const __m256i wv = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs)), flip);
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs));
    const __m256i isum = _mm256_dpbusd_epi32(lane0(a[i].bias), wv, xv);
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
    __m256i vqh = _mm256_setzero_si256();
    if constexpr (kFive) vqh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
    __m256 sb = _mm256_setzero_ps();
    float msb = 0.0f;
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      kquant_scale_min(scales, j, sc, m);
      __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * (j / 2)));
      q = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(15));
      if constexpr (kFive)
        q = _mm256_mask_add_epi8(q, _mm256_test_epi8_mask(vqh, _mm256_set1_epi8(static_cast<char>(1 << j))), q,
                                 _mm256_set1_epi8(16));
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs + 32 * j));
      const __m256i isum = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, xv);
      sb = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * static_cast<float>(sc)), sb);
      msb += -(dmin * static_cast<float>(m)) * a[i].sum32[j];
    }
    const __m256 dx = _mm256_set1_ps(a[i].d);
    acc = _mm256_fmadd_ps(sb, dx, acc);
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
        const int j = 4 * h + k;  // 32-element unit within the super-block
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs + 32 * j));
        const __m256i init = _mm256_setr_epi32(a[i].bias16[2 * j], 0, 0, 0, a[i].bias16[2 * j + 1], 0, 0, 0);
        const __m256i isum = _mm256_dpbusd_epi32(init, u[k], xv);
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
  t.row_align = 32;
  t.gemm_packed = gemm_packed_fn(kT);
  return t;
}

const std::array<TypeTraits, 11>& traits_array() {
  static const std::array<TypeTraits, 11> a = {
      make<DType::F32>(ActFormat::F32, &to_float<DType::F32>, vec_dot_f_fn(DType::F32), gemm_f_fn(DType::F32)),
      make<DType::F16>(ActFormat::F32, &to_float<DType::F16>, vec_dot_f_fn(DType::F16), gemm_f_fn(DType::F16)),
      make<DType::BF16>(ActFormat::F32, &to_float<DType::BF16>, vec_dot_f_fn(DType::BF16), gemm_f_fn(DType::BF16)),
      make<DType::Q4_0>(ActFormat::Q8x32, &to_float_legacy<BlockQ4_0, false, false>,
                        &vec_dot_legacy<BlockQ4_0, false, false>, gemm_q_fn(DType::Q4_0)),
      make<DType::Q4_1>(ActFormat::Q8x32, &to_float_legacy<BlockQ4_1, false, true>,
                        &vec_dot_legacy<BlockQ4_1, false, true>, gemm_q_fn(DType::Q4_1)),
      make<DType::Q5_0>(ActFormat::Q8x32, &to_float_legacy<BlockQ5_0, true, false>,
                        &vec_dot_legacy<BlockQ5_0, true, false>, gemm_q_fn(DType::Q5_0)),
      make<DType::Q5_1>(ActFormat::Q8x32, &to_float_legacy<BlockQ5_1, true, true>,
                        &vec_dot_legacy<BlockQ5_1, true, true>, gemm_q_fn(DType::Q5_1)),
      make<DType::Q8_0>(ActFormat::Q8x32, &to_float<DType::Q8_0>, &vec_dot_q8_0, gemm_q_fn(DType::Q8_0)),
      make<DType::Q4_K>(ActFormat::Q8x256, &to_float_qx_k<false>, &vec_dot_qx_k<false>, gemm_q_fn(DType::Q4_K)),
      make<DType::Q5_K>(ActFormat::Q8x256, &to_float_qx_k<true>, &vec_dot_qx_k<true>, gemm_q_fn(DType::Q5_K)),
      make<DType::Q6_K>(ActFormat::Q8x256, &to_float<DType::Q6_K>, &vec_dot_q6_k, gemm_q_fn(DType::Q6_K)),
  };
  return a;
}

const TypeTraits* traits(DType t) {
  for (const TypeTraits& tr : traits_array())
    if (tr.type == t) return &tr;
  return nullptr;
}

}  // namespace
}  // namespace avx512

const LevelTable* avx512_table() {
  static const LevelTable table{
      CpuLevel::Avx512,
      &avx512::traits,
      VecTraits{&avx512::fp16_to_fp32_row, &avx512::fp32_to_fp16_row, &avx512::dot_f32, &avx512::dot_f16_f32,
                &avx512::axpy_f16_f32, &avx512::quantize_act, &avx512::swiglu, &avx512::rmsnorm},
  };
  return &table;
}

}  // namespace pl::kernels::detail
