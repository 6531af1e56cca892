// AVX2 (+FMA+F16C) level of attn_tile: the blocked algorithm of attn_simd.h
// over ymm registers (8 floats). With 16 registers the tiles are 2 rows x 32
// keys for scores and 2 rows x 32 dimensions for P x V (8 accumulators each).
#include <immintrin.h>

#include <cstring>

#include "kernels/attn_simd.h"
#include "kernels/simd_exp.h"

namespace pl::kernels::detail {
namespace avx2 {
namespace {

struct Ymm {
  using reg = __m256;
  static constexpr int W = 8;
  static constexpr int kRowsS = 2;
  static constexpr int kRowsPV = 2;
  static constexpr int kVecPV = 4;
  static constexpr int kVecDirect = 4;  // P x V from fp16: up to 2 rows x 4 vectors

  // fp32 of the W halves at p (unaligned).
  static reg load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

  static reg zero() { return _mm256_setzero_ps(); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static reg bcast(float x) { return _mm256_set1_ps(x); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  // Lane k of the result = op over the 8 lanes of v[k], by a transposing
  // reduction (17 instructions for 8 rows where separate reductions take 40).
  template <class Op>
  static reg reduce_rows(const reg* v, Op op) {
    reg c[4], d[2];
    for (int i = 0; i < 4; ++i)  // c[i]: row 2i's 4 partials in the low 128 bits, row 2i+1's in the high
      c[i] = op(_mm256_permute2f128_ps(v[2 * i], v[2 * i + 1], 0x20), _mm256_permute2f128_ps(v[2 * i], v[2 * i + 1], 0x31));
    for (int i = 0; i < 2; ++i)  // d[i]: half h lanes 0-1 row 4i + h, lanes 2-3 row 4i + 2 + h
      d[i] = op(_mm256_shuffle_ps(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                _mm256_shuffle_ps(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    // Lane 4h + i now holds row h + 2i; the permutation puts row r in lane r.
    const reg f = op(_mm256_shuffle_ps(d[0], d[1], _MM_SHUFFLE(2, 0, 2, 0)), _mm256_shuffle_ps(d[0], d[1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm256_permutevar8x32_ps(f, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  }
  static reg reduce_rows_max(const reg* v) { return reduce_rows(v, [](reg a, reg b) { return _mm256_max_ps(a, b); }); }
  static reg reduce_rows_add(const reg* v) { return reduce_rows(v, [](reg a, reg b) { return _mm256_add_ps(a, b); }); }

  // Lanes whose key index (lane0 + lane) is >= cnt become -inf.
  static reg mask_keys(reg s, int lane0, int cnt) {
    if (cnt - lane0 >= W) return s;
    const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(lane0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(cnt), idx));
    return _mm256_blendv_ps(_mm256_set1_ps(-std::numeric_limits<float>::infinity()), s, keep);
  }

  static reg exp2(reg x) { return exp2_ymm(x); }  // simd_exp.h

  // dst[0, n) = fp32(src[0, n)), dst[n, n_pad) = 0; n_pad a multiple of W.
  static void cvt_f16_pad(const uint16_t* src, int n, float* dst, int n_pad) {
    if (n == n_pad) {
      for (int i = 0; i < n; i += W)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
      return;
    }
    for (int i = 0; i < n_pad; i += W) {
      const int left = n - i;
      __m256 v;
      if (left >= W) v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
      else if (left <= 0) v = _mm256_setzero_ps();
      else {
        uint16_t tmp[W] = {};
        std::memcpy(tmp, src + i, static_cast<size_t>(left) * sizeof(uint16_t));
        v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tmp)));
      }
      _mm256_storeu_ps(dst + i, v);
    }
  }
};

}  // namespace

void attn_tile(const AttnTileArgs& a, float* scratch) { attn_tile_simd<Ymm>(a, scratch); }

}  // namespace avx2
}  // namespace pl::kernels::detail
