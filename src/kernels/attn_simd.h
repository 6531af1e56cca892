// The blocked attention algorithm of attn_tile, written once over a small
// SIMD interface (struct V: register type, width W, loads, fmadd, exp2, ...)
// and instantiated by avx512_attn.cpp and avx2_attn.cpp with their own -m
// flags (attention.cpp uses only AttnScratchLayout). Everything here has internal
// linkage (anonymous namespace), so the two instantiations, built for
// different ISAs, can never be merged by the linker.
//
// Per sub-block of up to kKeys keys (all query rows of the tile that can see it):
//   1. convert the keys ([D][kKeys], transposed in the cache) and values
//      ([kKeys][Dp]) to fp32 once, for all rows;
//   2. S = Qs K (Qs = q * scale * log2 e, so the softmax runs in base 2),
//      register-blocked kRowsS rows x kKeys keys;
//   3. per row: causal mask, max, P = 2^(S - m_new), sum; the factor
//      2^(m_old - m_new) that rescales what was accumulated so far (row
//      maxima and sums reduced W rows at a time, see attn_softmax_rows);
//   4. O = O * corr + P V, register-blocked kRowsPV rows x kVecPV vectors of D.
// Rows are token-major (r = i * n_group + g) and positions increase with i,
// so the rows that see a sub-block are always a suffix of the tile.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/attention.h"

namespace pl::kernels::detail {
namespace {

constexpr int kKeys = 32;  // keys per sub-block (the cache's block is split into these)

inline int round_up(int n, int m) { return (n + m - 1) / m * m; }

// Scratch regions of one tile (floats); every region starts 64-byte aligned
// relative to the scratch base.
struct AttnScratchLayout {
  int R, Rp, D, Dp;
  size_t qs, o, m, l, corr, p, kt, vf, total;
  AttnScratchLayout(int head_dim, int n_rows) {
    R = n_rows;
    Rp = round_up(n_rows, 16);
    D = head_dim;
    Dp = round_up(head_dim, 16);
    size_t at = 0;
    auto take = [&](size_t n) {
      const size_t s = at;
      at += (n + 15) / 16 * 16;
      return s;
    };
    qs = take(static_cast<size_t>(R) * D);       // [R][D] scaled queries
    o = take(static_cast<size_t>(R) * Dp);       // [R][Dp] unnormalized outputs
    m = take(Rp);                                // [R] running max (base 2)
    l = take(Rp);                                // [R] running sum
    corr = take(Rp);                             // [R] rescale factor of this sub-block
    p = take(static_cast<size_t>(Rp) * kKeys);   // [Rp][kKeys] scores, then probabilities
    kt = take(static_cast<size_t>(D) * kKeys);   // [D][kKeys] keys, fp32
    vf = take(static_cast<size_t>(kKeys) * Dp);  // [kKeys][Dp] values, fp32
    total = at;
  }
};

// Where the kernels read keys and values: rows of fp32 (the scratch kt / vf
// a sub-block is converted into), or rows of the fp16 cache block itself,
// converted in registers at each use. The second is for sub-blocks that few
// rows see (a decode token's G query heads): one register block holds all
// the rows, so each vector is still converted once, and the conversion pass
// (~30% of a decode tile) goes away.
template <class V, int kLd = 0>
struct F32Rows {
  const float* p;
  int ld = kLd;  // floats between rows (kLd if known at compile time)
  typename V::reg load(int i, int off) const { return V::load(p + i * (kLd > 0 ? kLd : ld) + off); }
};
template <class V>
struct F16Rows {
  const uint16_t* p;
  size_t ld;  // halves between rows
  typename V::reg load(int i, int off) const { return V::load_f16(p + static_cast<size_t>(i) * ld + off); }
};

// S[r][0, kKeys) = qs[r] . keys for RB rows; keys.load(d, c * W) holds
// dimension d of keys c * W .. c * W + W - 1 of the sub-block. All kKeys lanes
// are computed: past the valid keys a cache block holds anything (even NaN),
// which the softmax masks.
template <class V, int RB, class Src>
inline void attn_scores(const float* qs, int D, const Src& keys, float* s) {
  constexpr int NV = kKeys / V::W;
  typename V::reg acc[RB][NV];
#pragma GCC unroll 16
  for (int r = 0; r < RB; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < NV; ++c) acc[r][c] = V::zero();
  for (int d = 0; d < D; ++d) {
    typename V::reg kv[NV];
#pragma GCC unroll 4
    for (int c = 0; c < NV; ++c) kv[c] = keys.load(d, c * V::W);
#pragma GCC unroll 16
    for (int r = 0; r < RB; ++r) {
      const typename V::reg qb = V::bcast(qs[r * D + d]);
#pragma GCC unroll 4
      for (int c = 0; c < NV; ++c) acc[r][c] = V::fmadd(qb, kv[c], acc[r][c]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < RB; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < NV; ++c) V::store(s + r * kKeys + c * V::W, acc[r][c]);
}

template <class V, class Src, int RB = V::kRowsS>
inline void attn_scores_rows(const float* qs, int D, const Src& keys, float* s, int n_rows) {
  if constexpr (RB > 0) {
    for (; n_rows >= RB; n_rows -= RB, qs += RB * D, s += RB * kKeys) attn_scores<V, RB>(qs, D, keys, s);
    if (n_rows > 0) attn_scores_rows<V, Src, RB - 1>(qs, D, keys, s, n_rows);
  }
}

// o[r][d0, d0 + NC * W) = o * corr[r] + sum_{j < nk} p[r][j] v[j] for RB rows;
// vals.load(j, d) holds dimensions d .. d + W - 1 of value j.
template <class V, int RB, int NC, class Src>
inline void attn_pv(const float* p, const Src& vals, int Dp, int nk, const float* corr, float* o, int d0) {
  typename V::reg acc[RB][NC];
#pragma GCC unroll 16
  for (int r = 0; r < RB; ++r) {
    const typename V::reg cr = V::bcast(corr[r]);
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c) acc[r][c] = V::mul(V::load(o + r * Dp + d0 + c * V::W), cr);
  }
  for (int j = 0; j < nk; ++j) {
    typename V::reg vv[NC];
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c) vv[c] = vals.load(j, d0 + c * V::W);
#pragma GCC unroll 16
    for (int r = 0; r < RB; ++r) {
      const typename V::reg pb = V::bcast(p[r * kKeys + j]);
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) acc[r][c] = V::fmadd(pb, vv[c], acc[r][c]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < RB; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c) V::store(o + r * Dp + d0 + c * V::W, acc[r][c]);
}

// The last `left` (< NC + 1) vectors of D, with a kernel of exactly that width.
template <class V, int RB, int NC, class Src>
inline void attn_pv_tail(const float* p, const Src& vals, int Dp, int nk, const float* corr, float* o, int d0,
                         int left) {
  if constexpr (NC > 0) {
    if (left == NC) return attn_pv<V, RB, NC>(p, vals, Dp, nk, corr, o, d0);
    attn_pv_tail<V, RB, NC - 1>(p, vals, Dp, nk, corr, o, d0, left);
  }
}

template <class V, int RB, int NC, class Src>
inline void attn_pv_cols(const float* p, const Src& vals, int Dp, int nk, const float* corr, float* o) {
  int d0 = 0;
  for (; d0 + NC * V::W <= Dp; d0 += NC * V::W) attn_pv<V, RB, NC>(p, vals, Dp, nk, corr, o, d0);
  if (d0 < Dp) attn_pv_tail<V, RB, NC - 1>(p, vals, Dp, nk, corr, o, d0, (Dp - d0) / V::W);
}

// Row blocks of RB (then fewer) rows, NC vectors of D at a time.
template <class V, int NC, class Src, int RB>
inline void attn_pv_rows(const float* p, const Src& vals, int Dp, int nk, const float* corr, float* o, int n_rows) {
  if constexpr (RB > 0) {
    for (; n_rows >= RB; n_rows -= RB, p += RB * kKeys, corr += RB, o += RB * Dp)
      attn_pv_cols<V, RB, NC>(p, vals, Dp, nk, corr, o);
    if (n_rows > 0) attn_pv_rows<V, NC, Src, RB - 1>(p, vals, Dp, nk, corr, o, n_rows);
  }
}

// One online-softmax step for the W rows [rg, rg + W): row r sees the first
// cnt[r - rg] keys of the sub-block in p (0: none, the row is left as it was).
// Row maxima and sums are reduced W rows at a time into one vector (lane k =
// row rg + k), so the running max, sum and rescale factor stay vectors too.
template <class V>
inline void attn_softmax_rows(float* p, const int* cnt, float* m, float* l, float* corr) {
  constexpr int NV = kKeys / V::W;
  typename V::reg part[V::W];
#pragma GCC unroll 16
  for (int k = 0; k < V::W; ++k) {
    if (cnt[k] == 0) {  // padding, or a row that cannot see this sub-block: nothing to load
      part[k] = V::bcast(-std::numeric_limits<float>::infinity());
      continue;
    }
    const float* pr = p + k * kKeys;
    typename V::reg mx = V::mask_keys(V::load(pr), 0, cnt[k]);
#pragma GCC unroll 4
    for (int c = 1; c < NV; ++c) mx = V::max(mx, V::mask_keys(V::load(pr + c * V::W), c * V::W, cnt[k]));
    part[k] = mx;
  }
  const typename V::reg m_old = V::load(m);
  const typename V::reg m_new = V::max(m_old, V::reduce_rows_max(part));
  const typename V::reg cr = V::exp2(V::sub(m_old, m_new));  // 0 on a row's first sub-block (m_old = -inf)
  V::store(m, m_new);
  V::store(corr, cr);
#pragma GCC unroll 16
  for (int k = 0; k < V::W; ++k) {
    if (cnt[k] == 0) {  // P x V never reads such a row
      part[k] = V::zero();
      continue;
    }
    float* pr = p + k * kKeys;
    const typename V::reg mb = V::bcast(m[k]);
    typename V::reg sum = V::zero();
#pragma GCC unroll 4
    for (int c = 0; c < NV; ++c) {
      const typename V::reg e = V::exp2(V::sub(V::mask_keys(V::load(pr + c * V::W), c * V::W, cnt[k]), mb));
      V::store(pr + c * V::W, e);
      sum = V::add(sum, e);
    }
    part[k] = sum;
  }
  V::store(l, V::fmadd(V::load(l), cr, V::reduce_rows_add(part)));
}

template <class V>
void attn_tile_simd(const AttnTileArgs& a, float* scratch) {
  const int D = a.head_dim, G = a.n_group, B = a.block_size;
  const AttnScratchLayout L(D, a.n_tok * G);
  const int R = L.R, Dp = L.Dp;
  float* qs = scratch + L.qs;
  float* o = scratch + L.o;
  float* m = scratch + L.m;
  float* l = scratch + L.l;
  float* corr = scratch + L.corr;
  float* p = scratch + L.p;
  float* kt = scratch + L.kt;
  float* vf = scratch + L.vf;

  const float qscale = a.scale * 1.4426950408889634f;  // log2(e): scores in base 2
  for (int i = 0; i < a.n_tok; ++i)
    for (int g = 0; g < G; ++g) {
      const float* src = a.q + i * a.ldq + g * D;
      float* dst = qs + static_cast<size_t>(i * G + g) * D;
      for (int d = 0; d < D; ++d) dst[d] = src[d] * qscale;
    }
  std::fill(o, o + static_cast<size_t>(R) * Dp, 0.0f);
  // Padding rows (R..Rp) are never seen by any key: a finite max keeps their lanes free of NaN.
  std::fill(m, m + R, -std::numeric_limits<float>::infinity());
  std::fill(m + R, m + L.Rp, 0.0f);
  std::fill(l, l + L.Rp, 0.0f);
  std::fill(corr, corr + L.Rp, 0.0f);

  const int32_t pos_last = a.pos[a.n_tok - 1];
  int i_first = 0;  // first token that sees the current sub-block
  for (int b = 0; b * B <= pos_last; ++b) {
    const uint16_t* kblk = a.k + a.block_table[b] * a.block_stride;  // [D][B]
    const uint16_t* vblk = a.v + a.block_table[b] * a.block_stride;  // [B][D]
    for (int j0 = 0; j0 < B && b * B + j0 <= pos_last; j0 += kKeys) {
      const int32_t kp0 = b * B + j0;  // position of the sub-block's first key
      const int nsub = std::min(kKeys, B - j0);
      const int nk = std::min<int32_t>(nsub, pos_last + 1 - kp0);  // keys any row sees
      while (a.pos[i_first] < kp0) ++i_first;
      const int r0 = i_first * G, nr = R - r0;

      // Few rows (one register block): the kernels read the fp16 block itself,
      // whole kKeys-key rows of it, so the block must hold whole sub-blocks,
      // and whole vectors of D.
      const bool direct = nr <= V::kRowsS && B % kKeys == 0 && D % V::W == 0;
      float* const p0 = p + static_cast<size_t>(r0) * kKeys;
      const float* const qs0 = qs + static_cast<size_t>(r0) * D;
      if (direct) {
        attn_scores_rows<V>(qs0, D, F16Rows<V>{kblk + j0, static_cast<size_t>(B)}, p0, nr);
      } else {
        for (int d = 0; d < D; ++d) V::cvt_f16_pad(kblk + static_cast<size_t>(d) * B + j0, nk, kt + d * kKeys, kKeys);
        for (int j = 0; j < nk; ++j) V::cvt_f16_pad(vblk + static_cast<size_t>(j0 + j) * D, D, vf + j * Dp, Dp);
        attn_scores_rows<V>(qs0, D, F32Rows<V, kKeys>{kt}, p0, nr);
      }

      // Softmax step W rows at a time; row r = i * G + g sees cnt[r - rg] keys (0 before r0 and in the padding).
      const int rg0 = r0 - r0 % V::W;
      for (int rg = rg0, i = rg0 / G, g = rg0 % G; rg < R; rg += V::W) {
        int cnt[V::W];
        for (int k = 0; k < V::W; ++k) {
          const int r = rg + k;
          cnt[k] = r < r0 || r >= R ? 0 : std::min<int32_t>(nk, a.pos[i] + 1 - kp0);
          if (++g == G) g = 0, ++i;
        }
        attn_softmax_rows<V>(p + static_cast<size_t>(rg) * kKeys, cnt, m + rg, l + rg, corr + rg);
      }
      float* const o0 = o + static_cast<size_t>(r0) * Dp;
      if (direct)  // all nr rows in one block, so each value vector is converted once
        attn_pv_rows<V, V::kVecDirect, F16Rows<V>, V::kRowsS>(
            p0, F16Rows<V>{vblk + static_cast<size_t>(j0) * D, static_cast<size_t>(D)}, Dp, nk, corr + r0, o0, nr);
      else
        attn_pv_rows<V, V::kVecPV, F32Rows<V>, V::kRowsPV>(p0, F32Rows<V>{vf, Dp}, Dp, nk, corr + r0, o0, nr);
    }
  }

  for (int i = 0; i < a.n_tok; ++i)
    for (int g = 0; g < G; ++g) {
      const int r = i * G + g;
      const float inv = 1.0f / l[r];
      const float* src = o + static_cast<size_t>(r) * Dp;
      float* dst = a.out + i * a.ldo + g * D;
      for (int d = 0; d < D; ++d) dst[d] = src[d] * inv;
    }
}

}  // namespace
}  // namespace pl::kernels::detail
