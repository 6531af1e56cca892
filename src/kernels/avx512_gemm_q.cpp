// AVX-512 VNNI tiled GEMM for the quantized weight types (compiled with
// -mavx512f/bw/vl/dq/vnni; only called when cpuid says so).
//
// Layout: vectorize across weight rows. A "panel unit" holds 32 elements of
// 32 rows (two groups of 16) as unsigned bytes, interleaved so that zmm j of a
// group carries elements 4j..4j+3 of each of its 16 rows, one row per dword
// lane. The activation (signed int8) is then broadcast one dword (4 elements)
// at a time and vpdpbusd accumulates 16 rows' dot products at once:
//   isum[row] += sum_{i<4} w[row][4j+i] * x[4j+i]
// Each unpacked weight register is reused for every token of the tile, and
// each broadcast for 32 rows; the float work (scales, mins) happens once per
// 32 elements per token for 16 rows. Zero-points (Q4_0's 8, Q8_0's 128 after
// flipping the sign bit, Q6_K's 32) are folded in by starting the int32 sum at
// the activation's precomputed -offset * sum(x).
//
// For small batches the weights are unpacked a few units at a time into an L1
// buffer and consumed at once; for larger batches the whole K range of a
// 32-row pair is unpacked into an L2 panel once and reused by all token tiles.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/kernels_internal.h"

namespace pl::kernels::detail::avx512 {
namespace {

struct alignas(64) PanelUnit {
  __m512i w[2][8];  // [group][dword]: 16 rows x 4 elements each
  __m512 s0[2];     // per row: block scale (legacy), d*sc (K), d*sc of the first 16 (Q6_K)
  __m512 s1[2];     // per row: min (Q4_1/Q5_1), -dmin*m (Q4_K/Q5_K), d*sc of the second 16 (Q6_K)
};
static_assert(sizeof(PanelUnit) == 1280);

constexpr int64_t kTokTile = 64;   // tokens per tile in panel mode
constexpr int64_t kDirectUnits = 8;  // units unpacked at a time in direct mode
constexpr int64_t kMaxBlockPairs = 4;  // 32-row pairs whose panels are kept together

inline __m512i bcast32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}
inline __m512i lo4(__m512i v) { return _mm512_and_si512(v, _mm512_set1_epi8(15)); }
inline __m512i hi4(__m512i v) { return _mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(15)); }
// fp16 in the low half of each dword lane -> fp32.
inline __m512 half_lo(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)); }
inline __m512 half_hi(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(v, 16))); }

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
// The fp16 at p + r * stride for r < 16, as fp32. (Scalar loads and inserts:
// vpgatherdd is several times slower on the CPUs with the gather-data-sampling
// microcode fix.)
inline __m512 gather_half16(const uint8_t* p, size_t stride) {
  __m128i a = _mm_cvtsi32_si128(load_u16(p)), b = _mm_cvtsi32_si128(load_u16(p + 8 * stride));
#pragma GCC unroll 8
  for (int r = 1; r < 8; ++r) {
    a = _mm_insert_epi16(a, load_u16(p + r * stride), r);
    b = _mm_insert_epi16(b, load_u16(p + (r + 8) * stride), r);
  }
  return _mm512_cvtph_ps(_mm256_set_m128i(b, a));
}
// The u32 at p + r * stride for r < 16, one per lane.
inline __m512i gather_u32x16(const uint8_t* p, size_t stride) {
  __m128i q[4];
  for (int k = 0; k < 4; ++k) {
    int32_t v[4];
    for (int i = 0; i < 4; ++i) std::memcpy(&v[i], p + (4 * k + i) * stride, 4);
    q[k] = _mm_insert_epi32(_mm_insert_epi32(_mm_insert_epi32(_mm_cvtsi32_si128(v[0]), v[1], 1), v[2], 2), v[3], 3);
  }
  __m512i r = _mm512_castsi128_si512(q[0]);
  r = _mm512_inserti32x4(r, q[1], 1);
  r = _mm512_inserti32x4(r, q[2], 2);
  return _mm512_inserti32x4(r, q[3], 3);
}

// Transposes 16 rows x 16 bytes: T[j] lane r = dword j of the 16 bytes at p + r * stride.
inline void load_t16x4(const uint8_t* p, size_t stride, __m512i T[4]) {
  __m512i z[4];
  for (int k = 0; k < 4; ++k) {
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k * stride)));
    v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + (k + 4) * stride)), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + (k + 8) * stride)), 2);
    v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + (k + 12) * stride)), 3);
    z[k] = v;  // 128-bit lane i holds row k + 4i
  }
  const __m512i a = _mm512_unpacklo_epi32(z[0], z[1]), b = _mm512_unpackhi_epi32(z[0], z[1]);
  const __m512i c = _mm512_unpacklo_epi32(z[2], z[3]), d = _mm512_unpackhi_epi32(z[2], z[3]);
  T[0] = _mm512_unpacklo_epi64(a, c);
  T[1] = _mm512_unpackhi_epi64(a, c);
  T[2] = _mm512_unpacklo_epi64(b, d);
  T[3] = _mm512_unpackhi_epi64(b, d);
}

// Adds 16 to byte i of each dword of w where bit `bit0 + i` of the matching
// dword of qh is set (the fifth bit of Q5 levels).
inline __m512i add_hbits(__m512i w, __m512i qh, int bit0) {
  const int byte = bit0 / 8, nib = (bit0 / 4) % 2;
  const __m512i ctrl = _mm512_add_epi8(_mm512_set1_epi8(static_cast<char>(byte)),
                                       _mm512_set4_epi32(0x0C0C0C0C, 0x08080808, 0x04040404, 0));
  const __m512i sel = _mm512_set1_epi32(nib ? static_cast<int>(0x80402010u) : 0x08040201);
  const __mmask64 k = _mm512_test_epi8_mask(_mm512_shuffle_epi8(qh, ctrl), sel);
  return _mm512_mask_add_epi8(w, k, w, _mm512_set1_epi8(16));
}

// ---- Packers: group g (16 rows at base, row stride `stride`) of units [u0, u0 + nu) ----

void pack_q4_0(const uint8_t* base, size_t stride, int64_t u0, int64_t nu, PanelUnit* out, int g) {
  for (int64_t u = 0; u < nu; ++u) {
    const uint8_t* b = base + (u0 + u) * sizeof(BlockQ4_0);
    __m512i T[4];
    load_t16x4(b + 2, stride, T);
    for (int j = 0; j < 4; ++j) out[u].w[g][j] = lo4(T[j]), out[u].w[g][j + 4] = hi4(T[j]);
    out[u].s0[g] = gather_half16(b, stride);
  }
}

void pack_q4_1(const uint8_t* base, size_t stride, int64_t u0, int64_t nu, PanelUnit* out, int g) {
  for (int64_t u = 0; u < nu; ++u) {
    const uint8_t* b = base + (u0 + u) * sizeof(BlockQ4_1);
    __m512i T[4];
    load_t16x4(b + 4, stride, T);
    for (int j = 0; j < 4; ++j) out[u].w[g][j] = lo4(T[j]), out[u].w[g][j + 4] = hi4(T[j]);
    const __m512i dm = gather_u32x16(b, stride);
    out[u].s0[g] = half_lo(dm);
    out[u].s1[g] = half_hi(dm);
  }
}

template <bool kMin>
void pack_q5(const uint8_t* base, size_t stride, int64_t u0, int64_t nu, PanelUnit* out, int g) {
  constexpr size_t kBytes = kMin ? sizeof(BlockQ5_1) : sizeof(BlockQ5_0);
  constexpr int kQh = kMin ? 4 : 2;
  for (int64_t u = 0; u < nu; ++u) {
    const uint8_t* b = base + (u0 + u) * kBytes;
    __m512i T[4];
    load_t16x4(b + kQh + 4, stride, T);
    const __m512i qh = gather_u32x16(b + kQh, stride);
    for (int j = 0; j < 4; ++j) {
      out[u].w[g][j] = add_hbits(lo4(T[j]), qh, 4 * j);
      out[u].w[g][j + 4] = add_hbits(hi4(T[j]), qh, 16 + 4 * j);
    }
    if constexpr (kMin) {
      const __m512i dm = gather_u32x16(b, stride);
      out[u].s0[g] = half_lo(dm);
      out[u].s1[g] = half_hi(dm);
    } else {
      out[u].s0[g] = gather_half16(b, stride);
    }
  }
}

void pack_q8_0(const uint8_t* base, size_t stride, int64_t u0, int64_t nu, PanelUnit* out, int g) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));  // q + 128: unsigned operand
  for (int64_t u = 0; u < nu; ++u) {
    const uint8_t* b = base + (u0 + u) * sizeof(BlockQ8_0);
    __m512i T[4];
    load_t16x4(b + 2, stride, T);
    for (int j = 0; j < 4; ++j) out[u].w[g][j] = _mm512_xor_si512(T[j], flip);
    load_t16x4(b + 18, stride, T);
    for (int j = 0; j < 4; ++j) out[u].w[g][j + 4] = _mm512_xor_si512(T[j], flip);
    out[u].s0[g] = gather_half16(b, stride);
  }
}

// Q4_K/Q5_K header (d, dmin, 12 scale bytes) of 16 rows -> per sub-block
// d*sc and -dmin*m vectors.
inline void kx_scales(const uint8_t* b, size_t stride, PanelUnit* out, int g) {
  __m512i H[4];
  load_t16x4(b, stride, H);  // H0 = d | dmin << 16, H1..H3 = scale bytes 0-3, 4-7, 8-11
  const __m512 d = half_lo(H[0]), ndmin = _mm512_sub_ps(_mm512_setzero_ps(), half_hi(H[0]));
  const __m512i m6 = _mm512_set1_epi32(63), m4 = _mm512_set1_epi32(15), m2 = _mm512_set1_epi32(3);
  for (int j = 0; j < 8; ++j) {
    __m512i sc, m;
    if (j < 4) {
      sc = _mm512_and_si512(_mm512_srli_epi32(H[1], 8 * j), m6);
      m = _mm512_and_si512(_mm512_srli_epi32(H[2], 8 * j), m6);
    } else {
      const int s = 8 * (j - 4);
      sc = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(H[3], s), m4),
                           _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(H[1], s + 6), m2), 4));
      m = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(H[3], s + 4), m4),
                          _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(H[2], s + 6), m2), 4));
    }
    out[j].s0[g] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc));
    out[j].s1[g] = _mm512_mul_ps(ndmin, _mm512_cvtepi32_ps(m));
  }
}

// Units are sub-blocks: nu and u0 are multiples of 8.
template <bool kFive>
void pack_qx_k(const uint8_t* base, size_t stride, int64_t u0, int64_t nu, PanelUnit* out, int g) {
  constexpr size_t kBytes = kFive ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  constexpr int kQs = kFive ? 48 : 16;
  for (int64_t s = 0; s < nu / 8; ++s) {
    const uint8_t* b = base + (u0 / 8 + s) * kBytes;
    PanelUnit* o = out + 8 * s;
    kx_scales(b, stride, o, g);
    __m512i QH[8];
    if constexpr (kFive) {
      load_t16x4(b + 16, stride, QH);
      load_t16x4(b + 32, stride, QH + 4);
    }
    for (int c = 0; c < 4; ++c) {
      __m512i T[8];
      load_t16x4(b + kQs + 32 * c, stride, T);
      load_t16x4(b + kQs + 32 * c + 16, stride, T + 4);
      for (int j = 0; j < 8; ++j) {
        __m512i lo = lo4(T[j]), hi = hi4(T[j]);
        if constexpr (kFive) {
          const __m512i s16 = _mm512_set1_epi8(16);
          lo = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(QH[j], _mm512_set1_epi8(static_cast<char>(1 << (2 * c)))), lo, s16);
          hi = _mm512_mask_add_epi8(hi, _mm512_test_epi8_mask(QH[j], _mm512_set1_epi8(static_cast<char>(2 << (2 * c)))), hi, s16);
        }
        o[2 * c].w[g][j] = lo;
        o[2 * c + 1].w[g][j] = hi;
      }
    }
  }
}

void pack_q6_k(const uint8_t* base, size_t stride, int64_t u0, int64_t nu, PanelUnit* out, int g) {
  const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
  for (int64_t s = 0; s < nu / 8; ++s) {
    const uint8_t* b = base + (u0 / 8 + s) * sizeof(BlockQ6_K);
    PanelUnit* o = out + 8 * s;
    const __m512 d = gather_half16(b + 208, stride);
    __m512i S[4];
    load_t16x4(b + 192, stride, S);  // S[q] lane r = int8 scales 4q..4q+3 of row r
    for (int h = 0; h < 2; ++h) {
      __m512i A[8], B[8], H[8];
      load_t16x4(b + 64 * h, stride, A);
      load_t16x4(b + 64 * h + 16, stride, A + 4);
      load_t16x4(b + 64 * h + 32, stride, B);
      load_t16x4(b + 64 * h + 48, stride, B + 4);
      load_t16x4(b + 128 + 32 * h, stride, H);
      load_t16x4(b + 128 + 32 * h + 16, stride, H + 4);
      for (int j = 0; j < 8; ++j) {
        const __m512i h4 = _mm512_slli_epi16(H[j], 4), h2 = _mm512_slli_epi16(H[j], 2);
        const __m512i hr2 = _mm512_srli_epi16(H[j], 2);
        // elements l, l+32, l+64, l+96 of the half (units 4h .. 4h+3)
        o[4 * h + 0].w[g][j] = _mm512_or_si512(_mm512_and_si512(A[j], m4), _mm512_and_si512(h4, m30));
        o[4 * h + 1].w[g][j] = _mm512_or_si512(_mm512_and_si512(B[j], m4), _mm512_and_si512(h2, m30));
        o[4 * h + 2].w[g][j] = _mm512_or_si512(hi4(A[j]), _mm512_and_si512(H[j], m30));
        o[4 * h + 3].w[g][j] = _mm512_or_si512(hi4(B[j]), _mm512_and_si512(hr2, m30));
      }
      for (int k = 0; k < 4; ++k) {
        for (int half = 0; half < 2; ++half) {
          const int idx = 8 * h + 2 * k + half;  // scale index of this 16-element group
          const __m512i v = _mm512_srai_epi32(_mm512_slli_epi32(S[idx / 4], 24 - 8 * (idx % 4)), 24);
          const __m512 sc = _mm512_mul_ps(d, _mm512_cvtepi32_ps(v));
          if (half == 0) o[4 * h + k].s0[g] = sc;
          else o[4 * h + k].s1[g] = sc;
        }
      }
    }
  }
}

// ---- Hot loops: 32 rows x units [u0, u0 + nu) x n_tok tokens ----
// acc (and accsb for the K-quants) are [n_tok][32] floats.

template <bool kMin>
void hot_legacy(const PanelUnit* p, int64_t u0, int64_t nu, const uint8_t* xa, size_t xs, int64_t n_tok,
                float* acc) {
  for (int64_t u = 0; u < nu; ++u) {
    const PanelUnit& pu = p[u];
    __m512i wa[8], wb[8];
    for (int j = 0; j < 8; ++j) wa[j] = _mm512_load_si512(&pu.w[0][j]), wb[j] = _mm512_load_si512(&pu.w[1][j]);
    const __m512 da = pu.s0[0], db = pu.s0[1];
    const __m512 ma = pu.s1[0], mb = pu.s1[1];
    const uint8_t* xt = xa + (u0 + u) * sizeof(ActQ8x32);
    float* ac = acc;
    for (int64_t t = 0; t < n_tok; ++t, xt += xs, ac += 32) {
      const auto* a = reinterpret_cast<const ActQ8x32*>(xt);
      // Two accumulator chains per group halve the vpdpbusd latency chain.
      __m512i ia = _mm512_set1_epi32(a->bias), ib = _mm512_set1_epi32(a->bias);
      __m512i ia1 = _mm512_setzero_si512(), ib1 = _mm512_setzero_si512();
      for (int j = 0; j < 8; j += 2) {
        const __m512i x0 = bcast32(a->qs + 4 * j), x1 = bcast32(a->qs + 4 * j + 4);
        ia = _mm512_dpbusd_epi32(ia, wa[j], x0);
        ib = _mm512_dpbusd_epi32(ib, wb[j], x0);
        ia1 = _mm512_dpbusd_epi32(ia1, wa[j + 1], x1);
        ib1 = _mm512_dpbusd_epi32(ib1, wb[j + 1], x1);
      }
      ia = _mm512_add_epi32(ia, ia1);
      ib = _mm512_add_epi32(ib, ib1);
      const __m512 dx = _mm512_set1_ps(a->d);
      __m512 ca = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), _mm512_mul_ps(da, dx), _mm512_load_ps(ac));
      __m512 cb = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ib), _mm512_mul_ps(db, dx), _mm512_load_ps(ac + 16));
      if constexpr (kMin) {
        const __m512 ds = _mm512_set1_ps(a->dsum);
        ca = _mm512_fmadd_ps(ma, ds, ca);
        cb = _mm512_fmadd_ps(mb, ds, cb);
      }
      _mm512_store_ps(ac, ca);
      _mm512_store_ps(ac + 16, cb);
    }
  }
}

// Q4_K / Q5_K (kSixK false) and Q6_K (true). Units come in super-blocks of 8.
template <bool kSixK>
void hot_k(const PanelUnit* p, int64_t u0, int64_t nu, const uint8_t* xa, size_t xs, int64_t n_tok, float* acc,
           float* accsb) {
  for (int64_t s = 0; s < nu / 8; ++s) {
    const int64_t sb = u0 / 8 + s;
    for (int j = 0; j < 8; ++j) {
      const PanelUnit& pu = p[8 * s + j];
      __m512i wa[8], wb[8];
      for (int q = 0; q < 8; ++q) wa[q] = _mm512_load_si512(&pu.w[0][q]), wb[q] = _mm512_load_si512(&pu.w[1][q]);
      const __m512 s0a = pu.s0[0], s0b = pu.s0[1], s1a = pu.s1[0], s1b = pu.s1[1];
      const uint8_t* xt = xa + sb * sizeof(ActQ8x256);
      float* as = accsb;
      for (int64_t t = 0; t < n_tok; ++t, xt += xs, as += 32) {
        const auto* a = reinterpret_cast<const ActQ8x256*>(xt);
        const int8_t* qs = a->qs + 32 * j;
        __m512 ca = j == 0 ? _mm512_setzero_ps() : _mm512_load_ps(as);
        __m512 cb = j == 0 ? _mm512_setzero_ps() : _mm512_load_ps(as + 16);
        if constexpr (kSixK) {
          __m512i ia0 = _mm512_set1_epi32(a->bias16[2 * j]), ib0 = _mm512_set1_epi32(a->bias16[2 * j]);
          __m512i ia1 = _mm512_set1_epi32(a->bias16[2 * j + 1]), ib1 = _mm512_set1_epi32(a->bias16[2 * j + 1]);
          for (int q = 0; q < 4; ++q) {
            const __m512i x0 = bcast32(qs + 4 * q), x1 = bcast32(qs + 16 + 4 * q);
            ia0 = _mm512_dpbusd_epi32(ia0, wa[q], x0);
            ib0 = _mm512_dpbusd_epi32(ib0, wb[q], x0);
            ia1 = _mm512_dpbusd_epi32(ia1, wa[q + 4], x1);
            ib1 = _mm512_dpbusd_epi32(ib1, wb[q + 4], x1);
          }
          ca = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia0), s0a, ca);
          cb = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ib0), s0b, cb);
          ca = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia1), s1a, ca);
          cb = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ib1), s1b, cb);
        } else {
          __m512i ia = _mm512_setzero_si512(), ib = _mm512_setzero_si512();
          __m512i ia1 = _mm512_setzero_si512(), ib1 = _mm512_setzero_si512();
          for (int q = 0; q < 8; q += 2) {
            const __m512i x0 = bcast32(qs + 4 * q), x1 = bcast32(qs + 4 * q + 4);
            ia = _mm512_dpbusd_epi32(ia, wa[q], x0);
            ib = _mm512_dpbusd_epi32(ib, wb[q], x0);
            ia1 = _mm512_dpbusd_epi32(ia1, wa[q + 1], x1);
            ib1 = _mm512_dpbusd_epi32(ib1, wb[q + 1], x1);
          }
          ia = _mm512_add_epi32(ia, ia1);
          ib = _mm512_add_epi32(ib, ib1);
          const __m512 m = _mm512_set1_ps(a->sum32[j]);
          ca = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), s0a, ca);
          cb = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ib), s0b, cb);
          ca = _mm512_fmadd_ps(s1a, m, ca);
          cb = _mm512_fmadd_ps(s1b, m, cb);
        }
        _mm512_store_ps(as, ca);
        _mm512_store_ps(as + 16, cb);
      }
    }
    const uint8_t* xt = xa + sb * sizeof(ActQ8x256);
    for (int64_t t = 0; t < n_tok; ++t, xt += xs) {
      const __m512 dx = _mm512_set1_ps(reinterpret_cast<const ActQ8x256*>(xt)->d);
      float* ac = acc + 32 * t;
      const float* as = accsb + 32 * t;
      _mm512_store_ps(ac, _mm512_fmadd_ps(_mm512_load_ps(as), dx, _mm512_load_ps(ac)));
      _mm512_store_ps(ac + 16, _mm512_fmadd_ps(_mm512_load_ps(as + 16), dx, _mm512_load_ps(ac + 16)));
    }
  }
}

enum class Scheme { Legacy, LegacyMin, KMin, K6 };
using PackFn = void (*)(const uint8_t*, size_t, int64_t, int64_t, PanelUnit*, int);

template <Scheme kS>
void hot(const PanelUnit* p, int64_t u0, int64_t nu, const uint8_t* xa, size_t xs, int64_t n_tok, float* acc,
         float* accsb) {
  if constexpr (kS == Scheme::Legacy) hot_legacy<false>(p, u0, nu, xa, xs, n_tok, acc);
  else if constexpr (kS == Scheme::LegacyMin) hot_legacy<true>(p, u0, nu, xa, xs, n_tok, acc);
  else if constexpr (kS == Scheme::KMin) hot_k<false>(p, u0, nu, xa, xs, n_tok, acc, accsb);
  else hot_k<true>(p, u0, nu, xa, xs, n_tok, acc, accsb);
}

inline void store_rows(const float* acc, int64_t n_tok, float* y, int64_t ldy, int64_t row0, int n_valid) {
  const __mmask16 ka = static_cast<__mmask16>(n_valid >= 16 ? 0xFFFF : (1u << n_valid) - 1);
  const __mmask16 kb = static_cast<__mmask16>(n_valid >= 32 ? 0xFFFF : n_valid <= 16 ? 0 : (1u << (n_valid - 16)) - 1);
  for (int64_t t = 0; t < n_tok; ++t) {
    float* yt = y + t * ldy + row0;
    _mm512_mask_storeu_ps(yt, ka, _mm512_load_ps(acc + 32 * t));
    _mm512_mask_storeu_ps(yt + 16, kb, _mm512_load_ps(acc + 32 * t + 16));
  }
}

// Pairs per L2-resident row block and tokens per tile for a row length: the
// packed panels of a block (40 bytes per column per pair) and one tile of
// activations should share ~768 KB of L2, so each activation tile is read from
// L3 once per block instead of once per pair.
inline void plan_blocks(int64_t n_cols, size_t act_row_bytes, int64_t& pairs, int64_t& tile) {
  constexpr int64_t kL2Budget = 768 * 1024;
  tile = n_cols > 3072 ? kTokTile / 2 : kTokTile;
  const int64_t panel = n_cols / 32 * static_cast<int64_t>(sizeof(PanelUnit));
  pairs = std::clamp<int64_t>((kL2Budget - tile * static_cast<int64_t>(act_row_bytes)) / panel, 1, kMaxBlockPairs);
}

template <PackFn kPack, Scheme kS>
void gemm_q(const GemmArgs& a, int64_t r0, int64_t r1, void* scratch) {
  const int64_t n_units = a.n_cols / 32;
  const size_t rb = a.w_row_bytes;
  // Scratch: [panels: kMaxBlockPairs x n_units][acc: kTokTile x 32][accsb: kTokTile x 32][tail: 32 x rb]
  auto* panel = static_cast<PanelUnit*>(scratch);
  auto* acc = reinterpret_cast<float*>(panel + kMaxBlockPairs * n_units);
  float* accsb = acc + kTokTile * 32;
  auto* tail = reinterpret_cast<uint8_t*>(accsb + kTokTile * 32);

  // Rows of the pair at row0, padding a short last pair with copies of its last row.
  auto pair_rows = [&](int64_t row0) {
    const int n_valid = static_cast<int>(std::min<int64_t>(32, r1 - row0));
    const uint8_t* base = a.w + static_cast<size_t>(row0) * rb;
    if (n_valid == 32) return base;
    for (int r = 0; r < 32; ++r) std::memcpy(tail + r * rb, base + std::min(r, n_valid - 1) * rb, rb);
    return static_cast<const uint8_t*>(tail);
  };
  auto n_valid_of = [&](int64_t row0) { return static_cast<int>(std::min<int64_t>(32, r1 - row0)); };

  if (a.n_tok <= kTokTile) {
    // Small batch: unpack a few units at a time and use them at once (stays in L1).
    for (int64_t row0 = r0; row0 < r1; row0 += 32) {
      const uint8_t* base = pair_rows(row0);
      std::memset(acc, 0, static_cast<size_t>(a.n_tok) * 32 * sizeof(float));
      for (int64_t u = 0; u < n_units; u += kDirectUnits) {
        const int64_t nu = std::min(kDirectUnits, n_units - u);
        kPack(base, rb, u, nu, panel, 0);
        kPack(base + 16 * rb, rb, u, nu, panel, 1);
        hot<kS>(panel, u, nu, a.xa, a.xa_row_bytes, a.n_tok, acc, accsb);
      }
      store_rows(acc, a.n_tok, a.y, a.ldy, row0, n_valid_of(row0));
    }
    return;
  }
  // Large batch: unpack the whole K range of a block of pairs once, then run
  // every token tile over all pairs of the block.
  int64_t block_pairs, tile;
  plan_blocks(a.n_cols, a.xa_row_bytes, block_pairs, tile);
  for (int64_t blk0 = r0; blk0 < r1; blk0 += 32 * block_pairs) {
    const int64_t np = std::min(block_pairs, (r1 - blk0 + 31) / 32);
    for (int64_t p = 0; p < np; ++p) {
      const uint8_t* base = pair_rows(blk0 + 32 * p);
      kPack(base, rb, 0, n_units, panel + p * n_units, 0);
      kPack(base + 16 * rb, rb, 0, n_units, panel + p * n_units, 1);
    }
    for (int64_t t0 = 0; t0 < a.n_tok; t0 += tile) {
      const int64_t nt = std::min(tile, a.n_tok - t0);
      const uint8_t* xt = a.xa + static_cast<size_t>(t0) * a.xa_row_bytes;
      for (int64_t p = 0; p < np; ++p) {
        std::memset(acc, 0, static_cast<size_t>(nt) * 32 * sizeof(float));
        hot<kS>(panel + p * n_units, 0, n_units, xt, a.xa_row_bytes, nt, acc, accsb);
        store_rows(acc, nt, a.y + t0 * a.ldy, a.ldy, blk0 + 32 * p, n_valid_of(blk0 + 32 * p));
      }
    }
  }
}

}  // namespace

GemmFn gemm_q_fn(DType t) {
  switch (t) {
    case DType::Q4_0: return &gemm_q<pack_q4_0, Scheme::Legacy>;
    case DType::Q4_1: return &gemm_q<pack_q4_1, Scheme::LegacyMin>;
    case DType::Q5_0: return &gemm_q<pack_q5<false>, Scheme::Legacy>;
    case DType::Q5_1: return &gemm_q<pack_q5<true>, Scheme::LegacyMin>;
    case DType::Q8_0: return &gemm_q<pack_q8_0, Scheme::Legacy>;
    case DType::Q4_K: return &gemm_q<pack_qx_k<false>, Scheme::KMin>;
    case DType::Q5_K: return &gemm_q<pack_qx_k<true>, Scheme::KMin>;
    case DType::Q6_K: return &gemm_q<pack_q6_k, Scheme::K6>;
    default: return nullptr;
  }
}

}  // namespace pl::kernels::detail::avx512
