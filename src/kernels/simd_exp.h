// Vector 2^x for the SIMD levels, shared by attention (softmax) and the
// activation functions. Include only from a file compiled with that level's
// flags (avx512_*.cpp, avx2_*.cpp).
//
// x = n + f with n an integer and |f| <= 1/2; 2^f = e^(f ln 2) by its Taylor
// series to degree 7 (truncation error < 6e-9 relative), times 2^n.
#pragma once

#include <immintrin.h>

namespace pl::kernels::detail {

#define PL_EXP2_POLY(FMADD, SET1, f)                               \
  FMADD(FMADD(FMADD(FMADD(FMADD(FMADD(FMADD(SET1(1.5252733804059838e-05f), f, SET1(1.5403530393381606e-04f)), f, \
                                      SET1(1.3333558146428441e-03f)), f, SET1(9.618129107628477e-03f)), f,       \
                          SET1(5.5504108664821576e-02f)), f, SET1(2.402265069591007e-01f)), f,                   \
              SET1(6.931471805599453e-01f)), f, SET1(1.0f))

#ifdef __AVX512F__
// Any x: NaN stays NaN, below 2^-150 (and -inf) gives 0, above 2^128 +inf
// (scalef handles the subnormal and overflow ranges).
inline __m512 exp2_zmm(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-200.0f), x);  // operand order: a NaN x is returned as is
  x = _mm512_min_ps(_mm512_set1_ps(200.0f), x);
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  return _mm512_scalef_ps(PL_EXP2_POLY(_mm512_fmadd_ps, _mm512_set1_ps, f), n);
}
#endif

#ifdef __AVX2__
// Any x: NaN stays NaN, below 2^-126 (and -inf) gives 0, from 2^128 up +inf.
inline __m256 exp2_ymm(__m256 x) {
  const __m256 xc = _mm256_min_ps(_mm256_set1_ps(127.0f), _mm256_max_ps(_mm256_set1_ps(-126.0f), x));  // NaN kept
  const __m256 n = _mm256_round_ps(xc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(xc, n);
  const __m256 p = PL_EXP2_POLY(_mm256_fmadd_ps, _mm256_set1_ps, f);
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 r = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  const __m256 zero = _mm256_cmp_ps(x, _mm256_set1_ps(-126.0f), _CMP_LT_OQ);
  const __m256 inf = _mm256_cmp_ps(x, _mm256_set1_ps(128.0f), _CMP_GE_OQ);
  return _mm256_blendv_ps(_mm256_andnot_ps(zero, r), _mm256_set1_ps(__builtin_inff()), inf);
}
#endif

#undef PL_EXP2_POLY

}  // namespace pl::kernels::detail
