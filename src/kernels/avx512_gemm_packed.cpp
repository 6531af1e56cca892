// AVX-512 VNNI micro-kernels over packed weights (layouts in
// kernels_internal.h; compiled with this level's -m flags, called only when
// cpuid says so).
//
// A tile is R groups of 16 rows x C tokens (R = 1 in use). Its R x C float accumulators stay
// in zmm registers for the whole K loop; each block (32 elements; 16 for Q6_K)
// adds into R x C int32 accumulators with vpdpbusd, where one 64-byte load of
// packed weights gives 16 rows x 4 elements (one dword lane per row) and the
// token's 4 activation bytes are broadcast. The block's int sums then go to
// float once: acc += round(isum * d_w) * d_x, 2 instructions per 8 vpdpbusd,
// because the int sums start at kFloatSumStart and so are already floats
// (blocks.h). Zero-points are folded into that starting value too (the
// activation's -offset * sum(x)), so no per-element subtraction is needed.
//
// Weights are consumed straight from the packed stream: nothing is unpacked to
// memory, and a decode step (C = 1) reads each weight byte once, sequentially.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <utility>

#include "kernels/kernels_internal.h"

namespace pl::kernels::detail::avx512 {
namespace {

#define PL_INLINE inline __attribute__((always_inline))


// acc += w . broadcast(the int32 at p), the broadcast folded into the memory
// operand. GCC would keep each broadcast in a register with its own
// vpbroadcastd; folded, the loop issues ~35% fewer uops and runs ~13% faster.
PL_INLINE __m512i dpbusd_m32(__m512i acc, __m512i w, const void* p) {
  __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*static_cast<const int32_t*>(p)));
  return acc;
}
// acc += a * broadcast(the float at p), the broadcast folded into the memory operand.
PL_INLINE __m512 fmadd_m32(__m512 a, const void* p, __m512 acc) {
  __asm__("vfmadd231ps %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(a), "m"(*static_cast<const float*>(p)));
  return acc;
}
PL_INLINE float load_f32(const void* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
PL_INLINE int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
PL_INLINE __m512 half16(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(p)));
}

// A group's weights are one sequential stream; the hardware prefetcher alone
// leaves the cores waiting on DRAM between its bursts (and stops at 4 KiB
// pages). Asking for the unit ~2 KiB ahead keeps the loads in flight while the
// current unit computes: +15-30% for decode and batched decode (BatchStep).
constexpr size_t kPrefetchBytes = 2048;
template <size_t kUnit>
PL_INLINE void prefetch_ahead(const uint8_t* unit) {
  constexpr size_t ahead = (kPrefetchBytes + kUnit - 1) / kUnit * kUnit;
#pragma GCC unroll 64
  for (size_t l = 0; l < kUnit; l += 64) _mm_prefetch(reinterpret_cast<const char*>(unit + ahead + l), _MM_HINT_T0);
}

// The same for a K-quant super-block (2304 or 3392 bytes a group), spread
// over the super-block's loop: part `part` of kParts, kAhead super-blocks
// ahead. All 36-53 prefetches at once held up the loads behind them: the Q6_K
// matrix streamed at 15 GB/s against Q4_0's 18-21. Spread, two super-blocks
// ahead (`MatmulPacked/.../5632x2048`, alternated, medians): Q6_K 1 token
// 587 -> ~470 us, 8 tokens ~880 -> ~730 us; Q4_K 379 -> 324 and 578 -> 552 us.
template <size_t kUnit, int kParts, int kAhead>
PL_INLINE void prefetch_part(const uint8_t* unit, int part) {
  constexpr size_t per = ((kUnit + 63) / 64 + kParts - 1) / kParts * 64;
  const char* p = reinterpret_cast<const char*>(unit) + kAhead * kUnit + per * static_cast<size_t>(part);
#pragma GCC unroll 16
  for (size_t l = 0; l < per; l += 64) _mm_prefetch(p + l, _MM_HINT_T0);
}

// Only a chunk's first token tile streams the weights from memory and
// prefetches them; later tiles find them in L2, where the prefetches would
// only take load slots (9 of ~230 loads per Q4_0 pair at 10 tokens).
PL_INLINE bool streams_weights(int64_t t0) { return t0 == 0; }

template <int R, int C>
PL_INLINE void store_tile(const PackedGemmArgs& a, int64_t g, int64_t t0, const __m512 (&acc)[R][C]) {
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const int64_t row0 = (g + r) * kPackRows;
    const int64_t n_valid = std::min<int64_t>(kPackRows, a.n_rows - row0);
    if (n_valid <= 0) continue;
    const __mmask16 k = static_cast<__mmask16>(n_valid >= 16 ? 0xFFFF : (1u << n_valid) - 1);
#pragma GCC unroll 16
    for (int t = 0; t < C; ++t) _mm512_mask_storeu_ps(a.y + (t0 + t) * a.ldy + row0, k, acc[r][t]);
  }
}

// ---- Q4_0 / Q8_0: blocks of 32, stored in pairs ----

// The odd block of a Q4_0 pair is used as 16 * q, its nibbles in place (see
// act_bias_scale): kOddScale undoes that in its scale.
struct SrcQ4_0 {
  static constexpr size_t kPair = 576, kScales = 512;
  static constexpr float kOddScale = 1.0f / 16;
  // Both halves use the same 64 bytes: the even half's 8 loads stay in
  // registers for the odd half (at 10 tokens: 10 + 10 accumulators, 8
  // weights and the mask; Legacy::kMaxC stops the tiles there).
  template <int kHalf>
  static PL_INLINE __m512i w(const uint8_t* pair, int j, __m512i m4) {
    const __m512i v = _mm512_load_si512(pair + 64 * j);
    return kHalf == 0 ? _mm512_and_si512(v, m4) : _mm512_andnot_si512(m4, v);
  }
};
struct SrcQ8_0 {
  static constexpr size_t kPair = 1088, kScales = 1024;
  static constexpr float kOddScale = 1.0f;
  template <int kHalf>
  static PL_INLINE __m512i w(const uint8_t* pair, int j, __m512i) {
    return _mm512_load_si512(pair + 512 * kHalf + 64 * j);
  }
};

// The start of a token's int sums over one block: kFloatSumStart plus the
// activation's folded zero-point (ActQ8x32::bias_fbits at xt, its block).
PL_INLINE __m512i sum_start(const uint8_t* xt) {
  return _mm512_set1_epi32(load_i32(xt + offsetof(ActQ8x32, bias_fbits)));
}
// Block kHalf's weight scales d_w (16 rows) and -1.5 * 2^23 * d_w.
template <class Src, int kHalf>
PL_INLINE void block_scales(const uint8_t* pair, __m512& dw, __m512& dw_start) {
  dw = half16(pair + Src::kScales + 32 * kHalf);
  if (kHalf == 1 && Src::kOddScale != 1.0f) dw = _mm512_mul_ps(dw, _mm512_set1_ps(Src::kOddScale));
  dw_start = _mm512_mul_ps(dw, _mm512_set1_ps(-kFloatSumStartValue));
}
// The sum's bits are the float 1.5 * 2^23 + sum (kFloatSumStart): acc +=
// round(sum * d_w) * d_x (d_x of the activation block at xt) in two instructions.
PL_INLINE __m512 add_block_sum(__m512i isum, __m512 dw, __m512 dw_start, const uint8_t* xt, __m512 acc) {
  return fmadd_m32(_mm512_fmadd_ps(_mm512_castsi512_ps(isum), dw, dw_start), xt + offsetof(ActQ8x32, d), acc);
}

template <class Src, int kHalf, int R, int C>
PL_INLINE void legacy_block(const uint8_t* pair, size_t gb, const uint8_t* xb, size_t xs, __m512i m4,
                            __m512 (&acc)[R][C]) {
  __m512i ia[R][C];
#pragma GCC unroll 16
  for (int t = 0; t < C; ++t) {
    const __m512i start = sum_start(xb + t * xs);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) ia[r][t] = start;
  }
#pragma GCC unroll 16
  for (int j = 0; j < 8; ++j) {
    __m512i wv[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) wv[r] = Src::template w<kHalf>(pair + r * gb, j, m4);
#pragma GCC unroll 16
    for (int t = 0; t < C; ++t) {
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) ia[r][t] = dpbusd_m32(ia[r][t], wv[r], xb + t * xs + 4 * j);
    }
  }
  // Two float instructions per 8 vpdpbusd.
  __m512 dw[R], dw_start[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) block_scales<Src, kHalf>(pair + r * gb, dw[r], dw_start[r]);
#pragma GCC unroll 16
  for (int t = 0; t < C; ++t) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r][t] = add_block_sum(ia[r][t], dw[r], dw_start[r], xb + t * xs, acc[r][t]);
  }
}

// Both blocks of a pair at once, for few tokens: 2 x C int32 chains in flight
// instead of C, so each block's 8 dependent vpdpbusd (latency ~5) overlap the
// other block's.
template <class Src, int C>
PL_INLINE void legacy_pair(const uint8_t* pair, const uint8_t* xb, size_t xs, __m512i m4, __m512 (&acc)[1][C]) {
  __m512i ia[2][C];
#pragma GCC unroll 16
  for (int t = 0; t < C; ++t) {
    ia[0][t] = sum_start(xb + t * xs);
    ia[1][t] = sum_start(xb + sizeof(ActQ8x32) + t * xs);
  }
#pragma GCC unroll 16
  for (int j = 0; j < 8; ++j) {
    const __m512i w0 = Src::template w<0>(pair, j, m4), w1 = Src::template w<1>(pair, j, m4);
#pragma GCC unroll 16
    for (int t = 0; t < C; ++t) {
      ia[0][t] = dpbusd_m32(ia[0][t], w0, xb + t * xs + 4 * j);
      ia[1][t] = dpbusd_m32(ia[1][t], w1, xb + sizeof(ActQ8x32) + t * xs + 4 * j);
    }
  }
  __m512 dw[2], dw_start[2];
  block_scales<Src, 0>(pair, dw[0], dw_start[0]);
  block_scales<Src, 1>(pair, dw[1], dw_start[1]);
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
#pragma GCC unroll 16
    for (int t = 0; t < C; ++t)
      acc[0][t] = add_block_sum(ia[h][t], dw[h], dw_start[h], xb + h * sizeof(ActQ8x32) + t * xs, acc[0][t]);
  }
}


template <class Src>
struct Legacy {
  // 10-token tiles keep the pair's weight vectors in registers for both halves
  // (see SrcQ4_0::w): 12-token tiles, which had to load them again for the odd
  // half, ran 4-16% slower at 64 tokens in cache (one core, alternated; 11
  // tokens spill accumulators).
  static constexpr int kMaxC = 10;
  // Up to 4 tokens a block's 8-deep vpdpbusd chains leave the ports idle, and
  // running both blocks of a pair together nearly doubles the in-cache rate
  // (1 and 4 tokens: 31.8 -> 18.3 and 61.7 -> 35.3 us for 512 x 2048); from 6
  // tokens on there are chains enough, and the pair's register pressure costs.
  static constexpr int kPairMaxC = 4;
  template <int R, int C>
  static void tile(const PackedGemmArgs& a, int64_t g, int64_t t0) {
    const int64_t nb = a.n_cols / kQK;
    const size_t gb = a.group_bytes, xs = a.xa_row_bytes;
    const uint8_t* w = a.w + static_cast<size_t>(g) * gb;
    const uint8_t* x = a.xa + static_cast<size_t>(t0) * xs;
    const bool stream = streams_weights(t0);
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512 acc[R][C];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < C; ++t) acc[r][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b += 2) {
      const uint8_t* pair = w + static_cast<size_t>(b / 2) * Src::kPair;
      if (stream) prefetch_ahead<Src::kPair>(pair);
      if constexpr (R == 1 && C <= kPairMaxC) {
        if (b + 1 < nb) {
          legacy_pair<Src, C>(pair, x + b * sizeof(ActQ8x32), xs, m4, acc);
          continue;
        }
      }
      legacy_block<Src, 0>(pair, gb, x + b * sizeof(ActQ8x32), xs, m4, acc);
      if (b + 1 < nb) legacy_block<Src, 1>(pair, gb, x + (b + 1) * sizeof(ActQ8x32), xs, m4, acc);
    }
    store_tile(a, g, t0, acc);
  }
};

// ---- Q4_K: super-blocks of 256, eight 32-element sub-blocks ----

// Per-row d * sc[j], -kFloatSumStartValue * d * sc[j] and -dmin * m[j] of
// one super-block, for R groups. An odd sub-block's weights are its high
// nibbles in place, 16 * q (see q4k_sub), so its d * sc[j] carries 1 / 16.
template <int R>
PL_INLINE void q4k_scales(const uint8_t* sb, size_t gb, __m512 (*dsc)[8], __m512 (*dsc_start)[8], __m512 (*dmn)[8]) {
  const __m512i m6 = _mm512_set1_epi32(63), m4 = _mm512_set1_epi32(15), m2 = _mm512_set1_epi32(3);
  for (int r = 0; r < R; ++r) {
    const uint8_t* h = sb + r * gb + 2048;
    const __m512i dm = _mm512_load_si512(h);
    const __m512i s0 = _mm512_load_si512(h + 64), s1 = _mm512_load_si512(h + 128), s2 = _mm512_load_si512(h + 192);
    const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dm));
    const __m512 d16 = _mm512_mul_ps(d, _mm512_set1_ps(1.0f / 16));
    const __m512 ndmin = _mm512_sub_ps(_mm512_setzero_ps(), _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dm, 16))));
#pragma GCC unroll 16
    for (int j = 0; j < 8; ++j) {
      __m512i sc, m;
      if (j < 4) {
        sc = _mm512_and_si512(_mm512_srli_epi32(s0, 8 * j), m6);
        m = _mm512_and_si512(_mm512_srli_epi32(s1, 8 * j), m6);
      } else {
        const int s = 8 * (j - 4);
        sc = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(s2, s), m4),
                             _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s0, s + 6), m2), 4));
        m = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(s2, s + 4), m4),
                            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s1, s + 6), m2), 4));
      }
      dsc[r][j] = _mm512_mul_ps(j % 2 == 0 ? d : d16, _mm512_cvtepi32_ps(sc));
      dsc_start[r][j] = _mm512_mul_ps(dsc[r][j], _mm512_set1_ps(-kFloatSumStartValue));
      dmn[r][j] = _mm512_mul_ps(ndmin, _mm512_cvtepi32_ps(m));
    }
  }
}

template <int kNib, int R, int C>
PL_INLINE void q4k_sub(const uint8_t* chunk, size_t gb, const uint8_t* xb, size_t xs, int j, __m512i m4,
                       const __m512 (*dsc)[8], const __m512 (*dsc_start)[8], const __m512 (*dmn)[8],
                       __m512 (&acc)[R][C]) {
  __m512i ia[R][C];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < C; ++t) ia[r][t] = _mm512_set1_epi32(kFloatSumStart);
#pragma GCC unroll 16
  for (int q = 0; q < 8; ++q) {
    __m512i wv[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512i v = _mm512_load_si512(chunk + r * gb + 64 * q);
      // The high nibbles stay in place as 16 * q (one instruction, not a shift and an AND): the
      // sums stay below 2^22, so the start's trick still holds, and the 1 / 16 in dsc makes
      // round(isum * d * sc) the same float.
      wv[r] = kNib == 0 ? _mm512_and_si512(v, m4) : _mm512_andnot_si512(m4, v);
    }
#pragma GCC unroll 16
    for (int t = 0; t < C; ++t)
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) ia[r][t] = dpbusd_m32(ia[r][t], wv[r], xb + t * xs + 32 * j + 4 * q);
  }
#pragma GCC unroll 16
  for (int t = 0; t < C; ++t) {
    const uint8_t* xt = xb + t * xs;
    const __m512 dx = _mm512_set1_ps(load_f32(xt + offsetof(ActQ8x256, d)));
    const __m512 sum = _mm512_set1_ps(load_f32(xt + offsetof(ActQ8x256, sum32) + 4 * j));
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      // round(isum * d * sc) exactly (d * sc has 17 significant bits), as the float the sum's bits are.
      __m512 f = _mm512_fmadd_ps(_mm512_castsi512_ps(ia[r][t]), dsc[r][j], dsc_start[r][j]);
      f = _mm512_fmadd_ps(dmn[r][j], sum, f);
      acc[r][t] = _mm512_fmadd_ps(f, dx, acc[r][t]);
    }
  }
}

struct Q4K {
  static constexpr int kMaxC = 12;
  template <int R, int C>
  static void tile(const PackedGemmArgs& a, int64_t g, int64_t t0) {
    const int64_t ns = a.n_cols / kQKK;
    const size_t gb = a.group_bytes, xs = a.xa_row_bytes;
    const uint8_t* w = a.w + static_cast<size_t>(g) * gb;
    const uint8_t* x = a.xa + static_cast<size_t>(t0) * xs;
    const bool stream = streams_weights(t0);
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512 acc[R][C];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < C; ++t) acc[r][t] = _mm512_setzero_ps();
    alignas(64) __m512 dsc[R][8], dsc_start[R][8], dmn[R][8];
    for (int64_t s = 0; s < ns; ++s) {
      const uint8_t* sb = w + static_cast<size_t>(s) * 2304;
      const uint8_t* xb = x + s * sizeof(ActQ8x256);
      q4k_scales<R>(sb, gb, dsc, dsc_start, dmn);
      // A runtime loop: unrolled over the super-block the body outgrows the
      // decoded-uop cache and the legacy decoders bound the kernel.
#pragma GCC unroll 1
      for (int c = 0; c < 4; ++c) {
        if (stream) prefetch_part<2304, 4, 2>(sb, c);
        q4k_sub<0>(sb + 512 * c, gb, xb, xs, 2 * c, m4, dsc, dsc_start, dmn, acc);
        q4k_sub<1>(sb + 512 * c, gb, xb, xs, 2 * c + 1, m4, dsc, dsc_start, dmn, acc);
      }
    }
    store_tile(a, g, t0, acc);
  }
};

// ---- Q6_K: super-blocks of 256, sixteen 16-element sub-blocks ----

// 6-bit values of elements 32 m32 + 4j .. +3 for 16 rows, kM = m32 % 4: the
// low nibble from chunk m32 / 2 (the high nibble when kM is odd), bits 4-5
// from the high-bit vector of half m32 / 4, whose pair kM is rotated into
// place (32-bit rotates: the bits that cross into a neighbouring byte are
// masked off). With kM known at compile time, kM = 2 needs no rotate and even
// kM no shift: 3.25 vector instructions a weight vector instead of 4.
template <int kM>
PL_INLINE __m512i q6_weights(const uint8_t* lo_vec, const uint8_t* hi_vec, __m512i m4, __m512i m30) {
  __m512i lo = _mm512_load_si512(lo_vec);
  if constexpr (kM % 2 == 1) lo = _mm512_srli_epi32(lo, 4);
  lo = _mm512_and_si512(lo, m4);
  __m512i hb = _mm512_load_si512(hi_vec);
  if constexpr (kM != 2) hb = _mm512_rol_epi32(hb, (36 - 2 * kM) % 32);
  return _mm512_ternarylogic_epi32(lo, hb, m30, 0xF8);  // lo | (hb & m30)
}

// One 16-element sub-block s16 (half kSub of the 32-group m32) for C tokens.
template <int kSub, int kM, int R, int C>
PL_INLINE void q6k_sub(const uint8_t* sb, size_t gb, int m32, const uint8_t* xb, size_t xs, __m512i m4, __m512i m30,
                       const __m512 (*dsc)[16], __m512 (&sacc)[R][C]) {
  const int s16 = 2 * m32 + kSub;
  const uint8_t* lo_vec = sb + 512 * (m32 / 2) + 256 * kSub;
  const uint8_t* hi_vec = sb + 2048 + 512 * (m32 / 4) + 256 * kSub;
  __m512i ia[R][C];
#pragma GCC unroll 16
  for (int t = 0; t < C; ++t) {
    const __m512i bias = _mm512_set1_epi32(load_i32(xb + t * xs + offsetof(ActQ8x256, bias16) + 4 * s16));
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) ia[r][t] = bias;
  }
#pragma GCC unroll 16
  for (int q = 0; q < 4; ++q) {
    __m512i wv[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) wv[r] = q6_weights<kM>(lo_vec + r * gb + 64 * q, hi_vec + r * gb + 64 * q, m4, m30);
#pragma GCC unroll 16
    for (int t = 0; t < C; ++t)
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) ia[r][t] = dpbusd_m32(ia[r][t], wv[r], xb + t * xs + 16 * s16 + 4 * q);
  }
  // Sums of the super-block without the activation scale: 2 instructions per
  // 4 vpdpbusd here, d_x applied once per super-block by the caller.
#pragma GCC unroll 16
  for (int t = 0; t < C; ++t)
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) sacc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[r][t]), dsc[r][s16], sacc[r][t]);
}

// 32-element group m32 (m32 % 4 = kM): its two sub-blocks, and its share of
// the prefetch of the super-block two ahead.
template <int kM, int R, int C>
PL_INLINE void q6k_group(const uint8_t* sb, size_t gb, int m32, const uint8_t* xb, size_t xs, __m512i m4, __m512i m30,
                         const __m512 (*dsc)[16], __m512 (&sacc)[R][C], bool stream) {
  if (stream) prefetch_part<3392, 8, 2>(sb, m32);
  q6k_sub<0, kM>(sb, gb, m32, xb, xs, m4, m30, dsc, sacc);
  q6k_sub<1, kM>(sb, gb, m32, xb, xs, m4, m30, dsc, sacc);
}

struct Q6K {
  static constexpr int kMaxC = 8;
  template <int R, int C>
  static void tile(const PackedGemmArgs& a, int64_t g, int64_t t0) {
    const int64_t ns = a.n_cols / kQKK;
    const size_t gb = a.group_bytes, xs = a.xa_row_bytes;
    const uint8_t* w = a.w + static_cast<size_t>(g) * gb;
    const uint8_t* x = a.xa + static_cast<size_t>(t0) * xs;
    const bool stream = streams_weights(t0);
    const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
    __m512 acc[R][C];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < C; ++t) acc[r][t] = _mm512_setzero_ps();
    alignas(64) __m512 dsc[R][16];
    for (int64_t s = 0; s < ns; ++s) {
      const uint8_t* sb = w + static_cast<size_t>(s) * 3392;
      const uint8_t* xb = x + s * sizeof(ActQ8x256);
      for (int r = 0; r < R; ++r) {
        const __m512 d = half16(sb + r * gb + 3328);
        for (int k = 0; k < 16; ++k) {
          const __m128i sc = _mm_load_si128(reinterpret_cast<const __m128i*>(sb + r * gb + 3072 + 16 * k));
          dsc[r][k] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc)));
        }
      }
      __m512 sacc[R][C];
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < C; ++t) sacc[r][t] = _mm512_setzero_ps();
      // Two passes of four 32-element groups, each with its own unpacking.
#pragma GCC unroll 1
      for (int m0 = 0; m0 < 8; m0 += 4) {
        q6k_group<0>(sb, gb, m0, xb, xs, m4, m30, dsc, sacc, stream);
        q6k_group<1>(sb, gb, m0 + 1, xb, xs, m4, m30, dsc, sacc, stream);
        q6k_group<2>(sb, gb, m0 + 2, xb, xs, m4, m30, dsc, sacc, stream);
        q6k_group<3>(sb, gb, m0 + 3, xb, xs, m4, m30, dsc, sacc, stream);
      }
#pragma GCC unroll 16
      for (int t = 0; t < C; ++t) {
        const __m512 dx = _mm512_set1_ps(load_f32(xb + t * xs + offsetof(ActQ8x256, d)));
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(sacc[r][t], dx, acc[r][t]);
      }
    }
    store_tile(a, g, t0, acc);
  }
};

// ---- driver: token tiles x pairs of groups ----

using TileFn = void (*)(const PackedGemmArgs&, int64_t, int64_t);

template <class K, int... Cs>
constexpr std::array<TileFn, sizeof...(Cs)> tiles(std::integer_sequence<int, Cs...>) {
  return {&K::template tile<1, Cs + 1>...};
}

// One group (16 rows) per tile: the token count of a tile is what amortizes
// the weights' unpacking, and 1 x 10 tiles keep 20 of the 32 zmm registers as
// accumulators (1 x 12 for the K-quants). For C = 1 (decode) each thread
// streams its groups in order.
template <class K>
void gemm_packed(const PackedGemmArgs& a, int64_t g0, int64_t g1) {
  static constexpr auto kTiles = tiles<K>(std::make_integer_sequence<int, K::kMaxC>{});
  // Even token tiles, sizes differing by at most one: 14 tokens run as 7 + 7
  // at kMaxC = 10 (not 10 + 4), 512 as 44 x 10 + 8 x 9 (not 51 x 10 + 2).
  const int64_t n_tiles = (a.n_tok + K::kMaxC - 1) / K::kMaxC;
  const int64_t c_small = a.n_tok / n_tiles, n_big = a.n_tok % n_tiles;
  for (int64_t i = 0, t0 = 0; i < n_tiles; ++i) {
    const int64_t c = c_small + (i < n_big ? 1 : 0);
    const TileFn fn = kTiles[static_cast<size_t>(c - 1)];
    for (int64_t g = g0; g < g1; ++g) fn(a, g, t0);
    t0 += c;
  }
}

}  // namespace

PackedGemmFn gemm_packed_fn(DType t) {
  switch (t) {
    case DType::Q4_0: return &gemm_packed<Legacy<SrcQ4_0>>;
    case DType::Q8_0: return &gemm_packed<Legacy<SrcQ8_0>>;
    case DType::Q4_K: return &gemm_packed<Q4K>;
    case DType::Q6_K: return &gemm_packed<Q6K>;
    default: return nullptr;
  }
}

}  // namespace pl::kernels::detail::avx512
