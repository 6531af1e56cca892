// AVX2 (+FMA+F16C) tiled GEMM for the quantized weight types. Same layout as
// the AVX-512 version (avx512_gemm_q.cpp) with groups of 8 rows in ymm
// registers, and the int8 dot product done with vpmaddubsw (u8 x s8 -> pairs
// summed into saturating int16) + vpmaddwd (int16 pairs -> int32):
//  - several vpmaddubsw results are added in int16 before widening, as many as
//    the weight range allows without overflow (15*127*2*8 < 32768 for 4-bit
//    levels, 4 for 5-bit, 2 for 6-bit);
//  - Q8_0 cannot use q + 128 here (255*127*2 overflows int16), so it uses
//    |w| * sign(x, w) and ignores the activation's zero-point bias.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/kernels_internal.h"

namespace pl::kernels::detail::avx2 {
namespace {

struct alignas(32) PanelUnit {
  __m256i w[8];   // 8 rows x 4 elements per register (Q8_0: |w|)
  __m256i ws[8];  // Q8_0 only: the signed weights, for vpsignb
  __m256 s0;      // per row: see avx512_gemm_q.cpp
  __m256 s1;
};

constexpr int64_t kTokTile = 64;
constexpr int64_t kDirectUnits = 8;
constexpr int64_t kMaxBlockGroups = 6;  // 8-row groups whose panels are kept together

inline __m256i bcast32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}
inline __m256i lo4(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi8(15)); }
inline __m256i hi4(__m256i v) { return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(15)); }
inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline int32_t load_i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
// fp16 at p + r * stride, r < 8, as fp32.
inline __m256 gather_half8(const uint8_t* p, size_t stride) {
  __m128i a = _mm_cvtsi32_si128(load_u16(p));
#pragma GCC unroll 8
  for (int r = 1; r < 8; ++r) a = _mm_insert_epi16(a, load_u16(p + r * stride), r);
  return _mm256_cvtph_ps(a);
}
inline __m256i gather_u32x8(const uint8_t* p, size_t stride) {
  __m128i lo = _mm_cvtsi32_si128(load_i32(p)), hi = _mm_cvtsi32_si128(load_i32(p + 4 * stride));
#pragma GCC unroll 4
  for (int r = 1; r < 4; ++r) {
    lo = _mm_insert_epi32(lo, load_i32(p + r * stride), r);
    hi = _mm_insert_epi32(hi, load_i32(p + (r + 4) * stride), r);
  }
  return _mm256_set_m128i(hi, lo);
}
inline __m256 half_lo(__m256i v) {
  // low 16 bits of each dword -> packed 8 x u16 -> fp32
  const __m256i sh = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1, 0, 1, 4, 5, 8, 9, 12,
                                      13, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i p = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, sh), 0x08);
  return _mm256_cvtph_ps(_mm256_castsi256_si128(p));
}
inline __m256 half_hi(__m256i v) { return half_lo(_mm256_srli_epi32(v, 16)); }

// T[j] lane r = dword j of the 16 bytes at p + r * stride, r < 8.
inline void load_t8x4(const uint8_t* p, size_t stride, __m256i T[4]) {
  __m256i z[4];
  for (int k = 0; k < 4; ++k)
    z[k] = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(p + (k + 4) * stride),
                               reinterpret_cast<const __m128i*>(p + k * stride));
  const __m256i a = _mm256_unpacklo_epi32(z[0], z[1]), b = _mm256_unpackhi_epi32(z[0], z[1]);
  const __m256i c = _mm256_unpacklo_epi32(z[2], z[3]), d = _mm256_unpackhi_epi32(z[2], z[3]);
  T[0] = _mm256_unpacklo_epi64(a, c);
  T[1] = _mm256_unpackhi_epi64(a, c);
  T[2] = _mm256_unpacklo_epi64(b, d);
  T[3] = _mm256_unpackhi_epi64(b, d);
}

// +16 on byte i of each dword where bit bit0 + i of that dword of qh is set.
inline __m256i add_hbits(__m256i w, __m256i qh, int bit0) {
  const int byte = bit0 / 8, nib = (bit0 / 4) % 2;
  const __m256i ctrl = _mm256_add_epi8(_mm256_set1_epi8(static_cast<char>(byte)),
                                       _mm256_setr_epi32(0, 0x04040404, 0x08080808, 0x0C0C0C0C, 0, 0x04040404,
                                                         0x08080808, 0x0C0C0C0C));
  const __m256i sel = _mm256_set1_epi32(nib ? static_cast<int>(0x80402010u) : 0x08040201);
  const __m256i hit = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(qh, ctrl), sel), sel);
  return _mm256_or_si256(w, _mm256_and_si256(hit, _mm256_set1_epi8(16)));
}

// ---- packers: 8 rows at base, units [u0, u0 + nu) ----

void pack_q4_0(const uint8_t* base, size_t stride, int64_t u0, int64_t nu, PanelUnit* out) {
  for (int64_t u = 0; u < nu; ++u) {
    const uint8_t* b = base + (u0 + u) * sizeof(BlockQ4_0);
    __m256i T[4];
    load_t8x4(b + 2, stride, T);
    for (int j = 0; j < 4; ++j) out[u].w[j] = lo4(T[j]), out[u].w[j + 4] = hi4(T[j]);
    out[u].s0 = gather_half8(b, stride);
  }
}

void pack_q4_1(const uint8_t* base, size_t stride, int64_t u0, int64_t nu, PanelUnit* out) {
  for (int64_t u = 0; u < nu; ++u) {
    const uint8_t* b = base + (u0 + u) * sizeof(BlockQ4_1);
    __m256i T[4];
    load_t8x4(b + 4, stride, T);
    for (int j = 0; j < 4; ++j) out[u].w[j] = lo4(T[j]), out[u].w[j + 4] = hi4(T[j]);
    const __m256i dm = gather_u32x8(b, stride);
    out[u].s0 = half_lo(dm);
    out[u].s1 = half_hi(dm);
  }
}

template <bool kMin>
void pack_q5(const uint8_t* base, size_t stride, int64_t u0, int64_t nu, PanelUnit* out) {
  constexpr size_t kBytes = kMin ? sizeof(BlockQ5_1) : sizeof(BlockQ5_0);
  constexpr int kQh = kMin ? 4 : 2;
  for (int64_t u = 0; u < nu; ++u) {
    const uint8_t* b = base + (u0 + u) * kBytes;
    __m256i T[4];
    load_t8x4(b + kQh + 4, stride, T);
    const __m256i qh = gather_u32x8(b + kQh, stride);
    for (int j = 0; j < 4; ++j) {
      out[u].w[j] = add_hbits(lo4(T[j]), qh, 4 * j);
      out[u].w[j + 4] = add_hbits(hi4(T[j]), qh, 16 + 4 * j);
    }
    if constexpr (kMin) {
      const __m256i dm = gather_u32x8(b, stride);
      out[u].s0 = half_lo(dm);
      out[u].s1 = half_hi(dm);
    } else {
      out[u].s0 = gather_half8(b, stride);
    }
  }
}

void pack_q8_0(const uint8_t* base, size_t stride, int64_t u0, int64_t nu, PanelUnit* out) {
  for (int64_t u = 0; u < nu; ++u) {
    const uint8_t* b = base + (u0 + u) * sizeof(BlockQ8_0);
    __m256i T[8];
    load_t8x4(b + 2, stride, T);
    load_t8x4(b + 18, stride, T + 4);
    for (int j = 0; j < 8; ++j) out[u].w[j] = _mm256_abs_epi8(T[j]), out[u].ws[j] = T[j];
    out[u].s0 = gather_half8(b, stride);
  }
}

inline void kx_scales(const uint8_t* b, size_t stride, PanelUnit* out) {
  __m256i H[4];
  load_t8x4(b, stride, H);
  const __m256 d = half_lo(H[0]), ndmin = _mm256_sub_ps(_mm256_setzero_ps(), half_hi(H[0]));
  const __m256i m6 = _mm256_set1_epi32(63), m4 = _mm256_set1_epi32(15), m2 = _mm256_set1_epi32(3);
  for (int j = 0; j < 8; ++j) {
    __m256i sc, m;
    if (j < 4) {
      sc = _mm256_and_si256(_mm256_srli_epi32(H[1], 8 * j), m6);
      m = _mm256_and_si256(_mm256_srli_epi32(H[2], 8 * j), m6);
    } else {
      const int s = 8 * (j - 4);
      sc = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(H[3], s), m4),
                           _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(H[1], s + 6), m2), 4));
      m = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(H[3], s + 4), m4),
                          _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(H[2], s + 6), m2), 4));
    }
    out[j].s0 = _mm256_mul_ps(d, _mm256_cvtepi32_ps(sc));
    out[j].s1 = _mm256_mul_ps(ndmin, _mm256_cvtepi32_ps(m));
  }
}

template <bool kFive>
void pack_qx_k(const uint8_t* base, size_t stride, int64_t u0, int64_t nu, PanelUnit* out) {
  constexpr size_t kBytes = kFive ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  constexpr int kQs = kFive ? 48 : 16;
  for (int64_t s = 0; s < nu / 8; ++s) {
    const uint8_t* b = base + (u0 / 8 + s) * kBytes;
    PanelUnit* o = out + 8 * s;
    kx_scales(b, stride, o);
    __m256i QH[8];
    if constexpr (kFive) {
      load_t8x4(b + 16, stride, QH);
      load_t8x4(b + 32, stride, QH + 4);
    }
    const __m256i b16 = _mm256_set1_epi8(16);
    for (int c = 0; c < 4; ++c) {
      __m256i T[8];
      load_t8x4(b + kQs + 32 * c, stride, T);
      load_t8x4(b + kQs + 32 * c + 16, stride, T + 4);
      for (int j = 0; j < 8; ++j) {
        __m256i lo = lo4(T[j]), hi = hi4(T[j]);
        if constexpr (kFive) {
          // bit 2c (low sub-block) and 2c+1 (high) of each qh byte -> bit 4
          const int sl = 2 * c, sh = 2 * c + 1;
          const __m256i hl = sl <= 4 ? _mm256_slli_epi16(QH[j], 4 - sl) : _mm256_srli_epi16(QH[j], sl - 4);
          const __m256i hh = sh <= 4 ? _mm256_slli_epi16(QH[j], 4 - sh) : _mm256_srli_epi16(QH[j], sh - 4);
          lo = _mm256_or_si256(lo, _mm256_and_si256(hl, b16));
          hi = _mm256_or_si256(hi, _mm256_and_si256(hh, b16));
        }
        o[2 * c].w[j] = lo;
        o[2 * c + 1].w[j] = hi;
      }
    }
  }
}

void pack_q6_k(const uint8_t* base, size_t stride, int64_t u0, int64_t nu, PanelUnit* out) {
  const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
  for (int64_t s = 0; s < nu / 8; ++s) {
    const uint8_t* b = base + (u0 / 8 + s) * sizeof(BlockQ6_K);
    PanelUnit* o = out + 8 * s;
    const __m256 d = gather_half8(b + 208, stride);
    __m256i S[4];
    load_t8x4(b + 192, stride, S);
    for (int h = 0; h < 2; ++h) {
      __m256i A[8], B[8], H[8];
      load_t8x4(b + 64 * h, stride, A);
      load_t8x4(b + 64 * h + 16, stride, A + 4);
      load_t8x4(b + 64 * h + 32, stride, B);
      load_t8x4(b + 64 * h + 48, stride, B + 4);
      load_t8x4(b + 128 + 32 * h, stride, H);
      load_t8x4(b + 128 + 32 * h + 16, stride, H + 4);
      for (int j = 0; j < 8; ++j) {
        const __m256i h4 = _mm256_slli_epi16(H[j], 4), h2 = _mm256_slli_epi16(H[j], 2);
        const __m256i hr2 = _mm256_srli_epi16(H[j], 2);
        o[4 * h + 0].w[j] = _mm256_or_si256(_mm256_and_si256(A[j], m4), _mm256_and_si256(h4, m30));
        o[4 * h + 1].w[j] = _mm256_or_si256(_mm256_and_si256(B[j], m4), _mm256_and_si256(h2, m30));
        o[4 * h + 2].w[j] = _mm256_or_si256(hi4(A[j]), _mm256_and_si256(H[j], m30));
        o[4 * h + 3].w[j] = _mm256_or_si256(hi4(B[j]), _mm256_and_si256(hr2, m30));
      }
      for (int k = 0; k < 4; ++k) {
        for (int half = 0; half < 2; ++half) {
          const int idx = 8 * h + 2 * k + half;
          const __m256i v = _mm256_srai_epi32(_mm256_slli_epi32(S[idx / 4], 24 - 8 * (idx % 4)), 24);
          const __m256 sc = _mm256_mul_ps(d, _mm256_cvtepi32_ps(v));
          if (half == 0) o[4 * h + k].s0 = sc;
          else o[4 * h + k].s1 = sc;
        }
      }
    }
  }
}

// int32 sum over dwords [j0, j0 + n) of w x bcast(x + 4j), adding kGroup
// vpmaddubsw results in int16 before widening.
template <int kGroup>
inline __m256i dot_dwords(const __m256i* w, const int8_t* x, int j0, int n, __m256i acc) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (int j = j0; j < j0 + n; j += kGroup) {
    __m256i p = _mm256_maddubs_epi16(w[j], bcast32(x + 4 * j));
    for (int g = 1; g < kGroup; ++g) p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[j + g], bcast32(x + 4 * (j + g))));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
  }
  return acc;
}
// Q8_0: |w| * sign(x, w), one dword at a time (no int16 headroom).
inline __m256i dot_dwords_signed(const __m256i* w, const __m256i* ws, const int8_t* x, __m256i acc) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (int j = 0; j < 8; ++j) {
    const __m256i xs = _mm256_sign_epi8(bcast32(x + 4 * j), _mm256_load_si256(&ws[j]));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w[j], xs), ones));
  }
  return acc;
}

enum class Scheme { Legacy4, Legacy5, Legacy4Min, Legacy5Min, Q8, KMin4, KMin5, K6 };

template <Scheme kS>
void hot_legacy(const PanelUnit* p, int64_t u0, int64_t nu, const uint8_t* xa, size_t xs, int64_t n_tok, float* acc) {
  constexpr bool kMin = kS == Scheme::Legacy4Min || kS == Scheme::Legacy5Min;
  constexpr int kGroup = kS == Scheme::Legacy4 || kS == Scheme::Legacy4Min ? 8 : 4;
  for (int64_t u = 0; u < nu; ++u) {
    const PanelUnit& pu = p[u];
    __m256i w[8];
    for (int j = 0; j < 8; ++j) w[j] = _mm256_load_si256(&pu.w[j]);
    const __m256 ds = pu.s0, m = pu.s1;
    const uint8_t* xt = xa + (u0 + u) * sizeof(ActQ8x32);
    float* ac = acc;
    for (int64_t t = 0; t < n_tok; ++t, xt += xs, ac += 8) {
      const auto* a = reinterpret_cast<const ActQ8x32*>(xt);
      __m256i isum;
      if constexpr (kS == Scheme::Q8) {
        isum = dot_dwords_signed(w, pu.ws, a->qs, _mm256_setzero_si256());
      } else {
        isum = dot_dwords<kGroup>(w, a->qs, 0, 8, _mm256_set1_epi32(a->bias));
      }
      __m256 c = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(ds, _mm256_set1_ps(a->d)), _mm256_load_ps(ac));
      if constexpr (kMin) c = _mm256_fmadd_ps(m, _mm256_set1_ps(a->dsum), c);
      _mm256_store_ps(ac, c);
    }
  }
}

template <Scheme kS>
void hot_k(const PanelUnit* p, int64_t u0, int64_t nu, const uint8_t* xa, size_t xs, int64_t n_tok, float* acc,
           float* accsb) {
  for (int64_t s = 0; s < nu / 8; ++s) {
    const int64_t sb = u0 / 8 + s;
    for (int j = 0; j < 8; ++j) {
      const PanelUnit& pu = p[8 * s + j];
      __m256i w[8];
      for (int q = 0; q < 8; ++q) w[q] = _mm256_load_si256(&pu.w[q]);
      const __m256 s0 = pu.s0, s1 = pu.s1;
      const uint8_t* xt = xa + sb * sizeof(ActQ8x256);
      float* as = accsb;
      for (int64_t t = 0; t < n_tok; ++t, xt += xs, as += 8) {
        const auto* a = reinterpret_cast<const ActQ8x256*>(xt);
        const int8_t* qs = a->qs + 32 * j;
        __m256 c = j == 0 ? _mm256_setzero_ps() : _mm256_load_ps(as);
        if constexpr (kS == Scheme::K6) {
          const __m256i i0 = dot_dwords<2>(w, qs, 0, 4, _mm256_set1_epi32(a->bias16[2 * j]));
          const __m256i i1 = dot_dwords<2>(w, qs, 4, 4, _mm256_set1_epi32(a->bias16[2 * j + 1]));
          c = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0), s0, c);
          c = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1), s1, c);
        } else {
          const __m256i i0 = dot_dwords<kS == Scheme::KMin4 ? 8 : 4>(w, qs, 0, 8, _mm256_setzero_si256());
          c = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0), s0, c);
          c = _mm256_fmadd_ps(s1, _mm256_set1_ps(a->sum32[j]), c);
        }
        _mm256_store_ps(as, c);
      }
    }
    const uint8_t* xt = xa + sb * sizeof(ActQ8x256);
    for (int64_t t = 0; t < n_tok; ++t, xt += xs) {
      const __m256 dx = _mm256_set1_ps(reinterpret_cast<const ActQ8x256*>(xt)->d);
      _mm256_store_ps(acc + 8 * t, _mm256_fmadd_ps(_mm256_load_ps(accsb + 8 * t), dx, _mm256_load_ps(acc + 8 * t)));
    }
  }
}

template <Scheme kS>
void hot(const PanelUnit* p, int64_t u0, int64_t nu, const uint8_t* xa, size_t xs, int64_t n_tok, float* acc,
         float* accsb) {
  if constexpr (kS == Scheme::KMin4 || kS == Scheme::KMin5 || kS == Scheme::K6) hot_k<kS>(p, u0, nu, xa, xs, n_tok, acc, accsb);
  else hot_legacy<kS>(p, u0, nu, xa, xs, n_tok, acc);
}

using PackFn = void (*)(const uint8_t*, size_t, int64_t, int64_t, PanelUnit*);

inline void store_rows(const float* acc, int64_t n_tok, float* y, int64_t ldy, int64_t row0, int n_valid) {
  for (int64_t t = 0; t < n_tok; ++t) {
    float* yt = y + t * ldy + row0;
    if (n_valid == 8) {
      _mm256_storeu_ps(yt, _mm256_load_ps(acc + 8 * t));
    } else {
      for (int r = 0; r < n_valid; ++r) yt[r] = acc[8 * t + r];
    }
  }
}

// Groups per L2-resident row block (see avx512_gemm_q.cpp), for a smaller
// L2 budget: AVX2-only CPUs have 256 KB - 1 MB of L2.
inline int64_t block_groups(int64_t n_cols, size_t act_row_bytes, int64_t tile) {
  constexpr int64_t kL2Budget = 384 * 1024;
  const int64_t panel = n_cols / 32 * static_cast<int64_t>(sizeof(PanelUnit));
  return std::clamp<int64_t>((kL2Budget - tile * static_cast<int64_t>(act_row_bytes)) / panel, 1, kMaxBlockGroups);
}

template <PackFn kPack, Scheme kS>
void gemm_q(const GemmArgs& a, int64_t r0, int64_t r1, void* scratch) {
  const int64_t n_units = a.n_cols / 32;
  const size_t rb = a.w_row_bytes;
  auto* panel = static_cast<PanelUnit*>(scratch);
  auto* acc = reinterpret_cast<float*>(panel + kMaxBlockGroups * n_units);
  float* accsb = acc + kTokTile * 8;
  auto* tail = reinterpret_cast<uint8_t*>(accsb + kTokTile * 8);
  auto group_rows = [&](int64_t row0) {
    const int n_valid = static_cast<int>(std::min<int64_t>(8, r1 - row0));
    const uint8_t* base = a.w + static_cast<size_t>(row0) * rb;
    if (n_valid == 8) return base;
    for (int r = 0; r < 8; ++r) std::memcpy(tail + r * rb, base + std::min(r, n_valid - 1) * rb, rb);
    return static_cast<const uint8_t*>(tail);
  };
  auto n_valid_of = [&](int64_t row0) { return static_cast<int>(std::min<int64_t>(8, r1 - row0)); };

  if (a.n_tok <= kTokTile) {
    for (int64_t row0 = r0; row0 < r1; row0 += 8) {
      const uint8_t* base = group_rows(row0);
      std::memset(acc, 0, static_cast<size_t>(a.n_tok) * 8 * sizeof(float));
      for (int64_t u = 0; u < n_units; u += kDirectUnits) {
        const int64_t nu = std::min(kDirectUnits, n_units - u);
        kPack(base, rb, u, nu, panel);
        hot<kS>(panel, u, nu, a.xa, a.xa_row_bytes, a.n_tok, acc, accsb);
      }
      store_rows(acc, a.n_tok, a.y, a.ldy, row0, n_valid_of(row0));
    }
    return;
  }
  const int64_t tile = kTokTile / 2;
  const int64_t groups = block_groups(a.n_cols, a.xa_row_bytes, tile);
  for (int64_t blk0 = r0; blk0 < r1; blk0 += 8 * groups) {
    const int64_t ng = std::min(groups, (r1 - blk0 + 7) / 8);
    for (int64_t g = 0; g < ng; ++g) kPack(group_rows(blk0 + 8 * g), rb, 0, n_units, panel + g * n_units);
    for (int64_t t0 = 0; t0 < a.n_tok; t0 += tile) {
      const int64_t nt = std::min(tile, a.n_tok - t0);
      const uint8_t* xt = a.xa + static_cast<size_t>(t0) * a.xa_row_bytes;
      for (int64_t g = 0; g < ng; ++g) {
        std::memset(acc, 0, static_cast<size_t>(nt) * 8 * sizeof(float));
        hot<kS>(panel + g * n_units, 0, n_units, xt, a.xa_row_bytes, nt, acc, accsb);
        store_rows(acc, nt, a.y + t0 * a.ldy, a.ldy, blk0 + 8 * g, n_valid_of(blk0 + 8 * g));
      }
    }
  }
}

}  // namespace

GemmFn gemm_q_fn(DType t) {
  switch (t) {
    case DType::Q4_0: return &gemm_q<pack_q4_0, Scheme::Legacy4>;
    case DType::Q4_1: return &gemm_q<pack_q4_1, Scheme::Legacy4Min>;
    case DType::Q5_0: return &gemm_q<pack_q5<false>, Scheme::Legacy5>;
    case DType::Q5_1: return &gemm_q<pack_q5<true>, Scheme::Legacy5Min>;
    case DType::Q8_0: return &gemm_q<pack_q8_0, Scheme::Q8>;
    case DType::Q4_K: return &gemm_q<pack_qx_k<false>, Scheme::KMin4>;
    case DType::Q5_K: return &gemm_q<pack_qx_k<true>, Scheme::KMin5>;
    case DType::Q6_K: return &gemm_q<pack_q6_k, Scheme::K6>;
    default: return nullptr;
  }
}

}  // namespace pl::kernels::detail::avx2
