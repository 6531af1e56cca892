// AVX-512 level of attn_tile: the blocked algorithm of attn_simd.h over zmm
// registers (16 floats). Score tiles are 12 rows x 32 keys (24 accumulators),
// P x V tiles 6 rows x 64 dimensions (24 accumulators); sub-blocks seen by at
// most 12 rows (decode) read fp16 directly, P x V 12 rows x 32 dimensions.
#include <immintrin.h>

#include "kernels/attn_simd.h"
#include "kernels/avx512_reduce.h"
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
  static constexpr int kVecDirect = 2;  // P x V from fp16: up to 12 rows x 2 vectors

  // fp32 of the W halves at p (unaligned).
  static reg load_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }

  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg bcast(float x) { return _mm512_set1_ps(x); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }

  // Lane k of the result = max / sum over the 16 lanes of v[k] (avx512_reduce.h).
  static reg reduce_rows_max(const reg* v) { return reduce_rows16_max(v); }
  static reg reduce_rows_add(const reg* v) { return reduce_rows16_add(v); }

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
