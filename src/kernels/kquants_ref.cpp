// Reference quantize/dequantize of the K-quants (Q4_K, Q5_K, Q6_K).
//
// Quantization searches each sub-block's scale (and min) instead of taking the
// absolute maximum: for a set of candidate grid spacings around range/levels it
// rounds the data onto the grid, solves the least-squares fit of scale (and
// offset) to those levels, and keeps the fit with the smallest squared error
// after re-rounding. The sub-block scales are then quantized to 6 (or 8) bits
// against a per-super-block fp16 scale, and the elements re-rounded with the
// scales as stored, so the stored block is exactly what was optimised.
#include <emmintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/fp16.h"
#include "kernels/kernels_internal.h"

namespace pl::kernels::detail {
namespace {

// Round to nearest, ties to even (the MXCSR default), as one cvtss2si: on the
// x86-64 baseline std::nearbyint is a libm call, which dominated quantization.
inline int round_int(float x) { return _mm_cvtss_si32(_mm_set_ss(x)); }

constexpr int kSearchSteps = 12;  // candidates on each side of the plain range/levels spacing
constexpr float kSearchStep = 0.08f;

// Round to nearest even for |v| < 2^22 (adding 1.5 * 2^23 leaves no fraction
// bits); unlike a libm call this vectorizes.
inline float round_even(float v) { return (v + 0x1.8p23f) - 0x1.8p23f; }

// Fits x ~= a * q - mn with q in [0, nmax], a >= 0, mn >= 0 (minimising the
// squared error). Each candidate's error comes from its sums in closed form:
// sum (a q + b - x)^2 = a^2 Sqq + 2ab Sq + n b^2 - 2a Sqx - 2b Sx + Sxx.
void fit_scale_min(const float* x, int n, int nmax, float& a_out, float& mn_out) {
  float lo = x[0], hi = x[0], sx = 0, sxx = 0;
  for (int i = 0; i < n; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]), sx += x[i], sxx += x[i] * x[i];
  lo = std::min(lo, 0.0f);  // the offset can only be <= 0 (mins are stored unsigned)
  if (hi <= lo) {
    a_out = 0.0f;
    mn_out = -lo;
    return;
  }
  const float fn = static_cast<float>(n), fmax = static_cast<float>(nmax);
  float best_a = (hi - lo) / fmax, best_b = lo, best_err = std::numeric_limits<float>::max();
  for (int s = -kSearchSteps; s <= kSearchSteps; ++s) {
    const float iscale = (fmax + kSearchStep * static_cast<float>(s)) / (hi - lo);
    // Eight partial sums per quantity so the compiler can vectorize (n % 8 == 0).
    float vq[8] = {}, vqq[8] = {}, vqx[8] = {};
    for (int i = 0; i < n; i += 8)
      for (int l = 0; l < 8; ++l) {
        const float q = std::min(std::max(round_even(iscale * (x[i + l] - lo)), 0.0f), fmax);
        vq[l] += q, vqq[l] += q * q, vqx[l] += q * x[i + l];
      }
    float sq = 0, sqq = 0, sqx = 0;
    for (int l = 0; l < 8; ++l) sq += vq[l], sqq += vqq[l], sqx += vqx[l];
    const float det = fn * sqq - sq * sq;
    if (!(det > 0)) continue;
    float a = (fn * sqx - sq * sx) / det, b = (sqq * sx - sq * sqx) / det;
    if (b > 0) b = 0, a = sqx / sqq;
    if (!(a > 0)) continue;
    const float err = a * a * sqq + 2 * a * b * sq + fn * b * b - 2 * a * sqx - 2 * b * sx + sxx;
    if (err < best_err) best_err = err, best_a = a, best_b = b;
  }
  a_out = best_a;
  mn_out = -best_b;
}

// Fits x ~= a * q with q in [-32, 31] (a may be negative: the lone level -32
// then sits on the larger side of the data). Least-squares error of a
// candidate: Sxx - Sqx^2 / Sqq.
float fit_scale_sym6(const float* x, int n) {
  float amax = 0.0f, vmax = 0.0f;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), vmax = x[i];
  if (amax == 0.0f) return 0.0f;
  float best_a = vmax / -32.0f, best_gain = -1.0f;
  for (float level : {-32.0f, 31.0f}) {
    for (int s = -kSearchSteps; s <= kSearchSteps; ++s) {
      const float l = level + (level < 0 ? -1.0f : 1.0f) * kSearchStep * static_cast<float>(s);
      const float iscale = l / vmax;
      float vqq[8] = {}, vqx[8] = {};
      for (int i = 0; i < n; i += 8)
        for (int l = 0; l < 8; ++l) {
          const float q = std::min(std::max(round_even(iscale * x[i + l]), -32.0f), 31.0f);
          vqq[l] += q * q, vqx[l] += q * x[i + l];
        }
      float sqq = 0, sqx = 0;
      for (int l = 0; l < 8; ++l) sqq += vqq[l], sqx += vqx[l];
      if (!(sqq > 0) || sqx == 0) continue;
      const float gain = sqx * sqx / sqq;  // error = Sxx - gain
      if (gain > best_gain) best_gain = gain, best_a = sqx / sqq;
    }
  }
  return best_a;
}

// Shared by Q4_K and Q5_K: quantizes one super-block into d, dmin, the packed
// scales and the unpacked levels q[256] (0..nmax).
void quantize_kx_superblock(const float* x, int nmax, uint16_t& d_out, uint16_t& dmin_out, uint8_t* scales,
                            uint8_t* q) {
  float a[8], mn[8];
  for (int j = 0; j < 8; ++j) fit_scale_min(x + 32 * j, 32, nmax, a[j], mn[j]);
  const float max_a = *std::max_element(a, a + 8), max_m = *std::max_element(mn, mn + 8);
  d_out = float_to_half(max_a / 63.0f);
  dmin_out = float_to_half(max_m / 63.0f);
  const float d = half_to_float(d_out), dmin = half_to_float(dmin_out);
  uint8_t sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = static_cast<uint8_t>(d > 0 ? std::clamp(round_int(a[j] / d), 0, 63) : 0);
    m[j] = static_cast<uint8_t>(dmin > 0 ? std::clamp(round_int(mn[j] / dmin), 0, 63) : 0);
  }
  kquant_pack_scales(sc, m, scales);
  for (int j = 0; j < 8; ++j) {
    const float step = d * static_cast<float>(sc[j]), off = dmin * static_cast<float>(m[j]);
    const float is = step > 0 ? 1.0f / step : 0.0f;
    for (int i = 0; i < 32; ++i)
      q[32 * j + i] = static_cast<uint8_t>(std::clamp(round_int((x[32 * j + i] + off) * is), 0, nmax));
  }
}

}  // namespace

void quantize_q4_k(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ4_K*>(dst);
  uint8_t q[kQKK];
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    quantize_kx_superblock(x, 15, b[i].d, b[i].dmin, b[i].scales, q);
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l)
        b[i].qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
  }
}

void quantize_q5_k(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ5_K*>(dst);
  uint8_t q[kQKK];
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    quantize_kx_superblock(x, 31, b[i].d, b[i].dmin, b[i].scales, q);
    std::memset(b[i].qh, 0, sizeof(b[i].qh));
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        const int lo = q[64 * c + l], hi = q[64 * c + 32 + l];
        b[i].qs[32 * c + l] = static_cast<uint8_t>((lo & 15) | ((hi & 15) << 4));
        b[i].qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
  }
}

void quantize_q6_k(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ6_K*>(dst);
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    float a[16];
    float amax = 0.0f, vmax = 0.0f;
    for (int s = 0; s < 16; ++s) {
      a[s] = fit_scale_sym6(x + 16 * s, 16);
      if (std::fabs(a[s]) > amax) amax = std::fabs(a[s]), vmax = a[s];
    }
    // The int8 scales map the largest sub-block scale to -128 (the level
    // without a positive counterpart).
    b[i].d = float_to_half(vmax / -128.0f);
    const float d = half_to_float(b[i].d);
    uint8_t q[kQKK];
    for (int s = 0; s < 16; ++s) {
      const int sc = d != 0.0f ? std::clamp(round_int(a[s] / d), -128, 127) : 0;
      b[i].scales[s] = static_cast<int8_t>(sc);
      const float step = d * static_cast<float>(sc);
      const float is = step != 0.0f ? 1.0f / step : 0.0f;
      for (int e = 0; e < 16; ++e)
        q[16 * s + e] = static_cast<uint8_t>(std::clamp(round_int(x[16 * s + e] * is), -32, 31) + 32);
    }
    for (int h = 0; h < 2; ++h) {
      const uint8_t* qq = q + 128 * h;
      uint8_t* ql = b[i].ql + 64 * h;
      uint8_t* qh = b[i].qh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        ql[l] = static_cast<uint8_t>((qq[l] & 15) | ((qq[l + 64] & 15) << 4));
        ql[l + 32] = static_cast<uint8_t>((qq[l + 32] & 15) | ((qq[l + 96] & 15) << 4));
        qh[l] = static_cast<uint8_t>((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) | ((qq[l + 64] >> 4) << 4) |
                                     ((qq[l + 96] >> 4) << 6));
      }
    }
  }
}

void dequantize_q4_k(const void* src, float* y, int64_t n) {
  auto* b = static_cast<const BlockQ4_K*>(src);
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = half_to_float(b[i].d), dmin = half_to_float(b[i].dmin);
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      kquant_scale_min(b[i].scales, j, sc, m);
      const float step = d * static_cast<float>(sc), off = dmin * static_cast<float>(m);
      const uint8_t* qs = b[i].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) *y++ = step * static_cast<float>((qs[l] >> shift) & 15) - off;
    }
  }
}

void dequantize_q5_k(const void* src, float* y, int64_t n) {
  auto* b = static_cast<const BlockQ5_K*>(src);
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = half_to_float(b[i].d), dmin = half_to_float(b[i].dmin);
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      kquant_scale_min(b[i].scales, j, sc, m);
      const float step = d * static_cast<float>(sc), off = dmin * static_cast<float>(m);
      const uint8_t* qs = b[i].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) {
        const int q = ((qs[l] >> shift) & 15) | (((b[i].qh[l] >> j) & 1) << 4);
        *y++ = step * static_cast<float>(q) - off;
      }
    }
  }
}

void dequantize_q6_k(const void* src, float* y, int64_t n) {
  auto* b = static_cast<const BlockQ6_K*>(src);
  for (int64_t i = 0; i < n / kQKK; ++i, y += kQKK) {
    const float d = half_to_float(b[i].d);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = b[i].ql + 64 * h;
      const uint8_t* qh = b[i].qh + 32 * h;
      const int8_t* sc = b[i].scales + 8 * h;
      float* yy = y + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const int q0 = (ql[l] & 15) | (((qh[l] >> 0) & 3) << 4);
        const int q1 = (ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4);
        const int q2 = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
        const int q3 = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
        yy[l] = d * static_cast<float>(sc[l / 16]) * static_cast<float>(q0 - 32);
        yy[l + 32] = d * static_cast<float>(sc[2 + l / 16]) * static_cast<float>(q1 - 32);
        yy[l + 64] = d * static_cast<float>(sc[4 + l / 16]) * static_cast<float>(q2 - 32);
        yy[l + 96] = d * static_cast<float>(sc[6 + l / 16]) * static_cast<float>(q3 - 32);
      }
    }
  }
}

}  // namespace pl::kernels::detail
