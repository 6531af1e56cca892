// AVX-512 level of attn_tile: the blocked algorithm of attn_simd.h over zmm
// registers (16 floats). Score tiles are 12 rows x 32 keys (24 accumulators),
// P x V tiles 6 rows x 64 dimensions (24 accumulators).
#include <immintrin.h>

#include "kernels/attn_simd.h"
#include "kernels/simd_exp.h"

namespace pl::kernels::detail {
namespace avx512 {
namespace {

struct Zmm {
  using reg = __m512;
  static constexpr int W = 16;
  static constexpr int kRowsS = 12;
  static constexpr int kRowsPV = 6;
  static constexpr int kVecPV = 4;

  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg bcast(float x) { return _mm512_set1_ps(x); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }

  // Lane k of the result = op over the 16 lanes of v[k]. A transposing
  // reduction: each level halves the vectors by pairing halves of two of them
  // (quarters, then pairs of quarters' lanes), 46 instructions for 16 rows
  // where 16 separate horizontal reductions take 128.
  template <class Op>
  static reg reduce_rows(const reg* v, Op op) {
    reg c[8], d[4], e[2];
    for (int i = 0; i < 8; ++i)  // c[i]: row 2i's 8 partials in the low 256 bits, row 2i+1's in the high
      c[i] = op(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44), _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
    for (int i = 0; i < 4; ++i)  // d[i]: quarter q holds row 4i + q's 4 partials
      d[i] = op(_mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0x88), _mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0xDD));
    for (int i = 0; i < 2; ++i)  // e[i]: quarter q lanes 0-1 row 8i + q, lanes 2-3 row 8i + 4 + q
      e[i] = op(_mm512_shuffle_ps(d[2 * i], d[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                _mm512_shuffle_ps(d[2 * i], d[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    // Lane 4q + i now holds row q + 4i; the permutation puts row r in lane r.
    const reg f = op(_mm512_shuffle_ps(e[0], e[1], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(e[0], e[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(idx, f);
  }
  static reg reduce_rows_max(const reg* v) { return reduce_rows(v, [](reg a, reg b) { return _mm512_max_ps(a, b); }); }
  static reg reduce_rows_add(const reg* v) { return reduce_rows(v, [](reg a, reg b) { return _mm512_add_ps(a, b); }); }

  // Lanes whose key index (lane0 + lane) is >= cnt become -inf.
  static reg mask_keys(reg s, int lane0, int cnt) {
    const int n = cnt - lane0;
    if (n >= W) return s;
    const __mmask16 k = n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1);
    return _mm512_mask_mov_ps(_mm512_set1_ps(-std::numeric_limits<float>::infinity()), k, s);
  }

  static reg exp2(reg x) { return exp2_zmm(x); }  // simd_exp.h

  // dst[0, n) = fp32(src[0, n)), dst[n, n_pad) = 0; n_pad a multiple of W.
  static void cvt_f16_pad(const uint16_t* src, int n, float* dst, int n_pad) {
    if (n == n_pad) {
      for (int i = 0; i < n; i += W)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
      return;
    }
    for (int i = 0; i < n_pad; i += W) {
      const int left = n - i;
      __m512 v;
      if (left >= W) v = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
      else if (left <= 0) v = _mm512_setzero_ps();
      else {
        const __mmask16 k = static_cast<__mmask16>((1u << left) - 1);
        v = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, src + i));
      }
      _mm512_storeu_ps(dst + i, v);
    }
  }
};

}  // namespace

void attn_tile(const AttnTileArgs& a, float* scratch) { attn_tile_simd<Zmm>(a, scratch); }

}  // namespace avx512
}  // namespace pl::kernels::detail
