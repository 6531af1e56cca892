// Transposing horizontal reductions of 16 zmm vectors at once (AVX-512 TUs
// only): lane r of the result = op over the 16 lanes of v[r]. Each level
// halves the vectors by pairing halves of two of them (quarters, then pairs
// of quarters' lanes): 46 instructions for 16 rows, where 16 separate
// horizontal reductions take 128 and are a latency chain each.
#pragma once

#include <immintrin.h>

namespace pl::kernels::detail::avx512 {

template <class Op>
[[gnu::always_inline]] inline __m512 reduce_rows16(const __m512* v, Op op) {
  __m512 c[8], d[4], e[2];
  for (int i = 0; i < 8; ++i)  // c[i]: row 2i's 8 partials in the low 256 bits, row 2i+1's in the high
    c[i] = op(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44), _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
  for (int i = 0; i < 4; ++i)  // d[i]: quarter q holds row 4i + q's 4 partials
    d[i] = op(_mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0x88), _mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0xDD));
  for (int i = 0; i < 2; ++i)  // e[i]: quarter q lanes 0-1 row 8i + q, lanes 2-3 row 8i + 4 + q
    e[i] = op(_mm512_shuffle_ps(d[2 * i], d[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
              _mm512_shuffle_ps(d[2 * i], d[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  // Lane 4q + i now holds row q + 4i; the permutation puts row r in lane r.
  const __m512 f = op(_mm512_shuffle_ps(e[0], e[1], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(e[0], e[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_ps(idx, f);
}

[[gnu::always_inline]] inline __m512 reduce_rows16_max(const __m512* v) {
  return reduce_rows16(v, [](__m512 a, __m512 b) { return _mm512_max_ps(a, b); });
}
[[gnu::always_inline]] inline __m512 reduce_rows16_add(const __m512* v) {
  return reduce_rows16(v, [](__m512 a, __m512 b) { return _mm512_add_ps(a, b); });
}

}  // namespace pl::kernels::detail::avx512
