// Reference quantize/dequantize of the plain and 32-element block formats,
// the activation formats, and the per-type entry points. Written from the
// format definitions in blocks.h; the SIMD levels reuse these quantizers (they
// run at model-conversion time, not in the forward pass).
#include <emmintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/fp16.h"
#include "kernels/kernels_internal.h"

namespace pl::kernels::detail {

// K-quant reference code lives in kquants_ref.cpp.
void dequantize_q4_k(const void* src, float* dst, int64_t n);
void dequantize_q5_k(const void* src, float* dst, int64_t n);
void dequantize_q6_k(const void* src, float* dst, int64_t n);
void quantize_q4_k(const float* src, void* dst, int64_t n);
void quantize_q5_k(const float* src, void* dst, int64_t n);
void quantize_q6_k(const float* src, void* dst, int64_t n);

namespace {

// Round to nearest, ties to even (the MXCSR default), as one cvtss2si: on the
// x86-64 baseline std::nearbyint is a libm call, which dominated quantization.
inline int round_int(float x) { return _mm_cvtss_si32(_mm_set_ss(x)); }

float max_abs(const float* x, int n) {
  float m = 0.0f;
  for (int i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

// The element with the largest magnitude, with its sign: the symmetric 4/5-bit
// formats map it to the most negative level (-8 / -16), which has no positive
// counterpart, so the full range of levels is used.
float signed_max(const float* x, int n) {
  float amax = 0.0f, v = 0.0f;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), v = x[i];
  return v;
}

// ---- Q4_0 / Q5_0: x = d * (q - offset) ----
template <int kBits>
void quantize_sym_block(const float* x, uint16_t& d_out, uint8_t* qs, uint32_t& qh) {
  constexpr int kOffset = 1 << (kBits - 1), kMax = (1 << kBits) - 1;
  const float vmax = signed_max(x, kQK);
  d_out = float_to_half(vmax / -static_cast<float>(kOffset));
  const float d = half_to_float(d_out);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  qh = 0;
  std::memset(qs, 0, 16);
  for (int i = 0; i < kQK; ++i) {
    int q = std::clamp(round_int(x[i] * id) + kOffset, 0, kMax);
    qs[i % 16] |= static_cast<uint8_t>((q & 15) << (i < 16 ? 0 : 4));
    qh |= static_cast<uint32_t>(q >> 4) << i;
  }
}

// ---- Q4_1 / Q5_1: x = d * q + m ----
template <int kBits>
void quantize_min_block(const float* x, uint16_t& d_out, uint16_t& m_out, uint8_t* qs, uint32_t& qh) {
  constexpr int kMax = (1 << kBits) - 1;
  float lo = x[0], hi = x[0];
  for (int i = 1; i < kQK; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  d_out = float_to_half((hi - lo) / kMax);
  m_out = float_to_half(lo);
  const float d = half_to_float(d_out), m = half_to_float(m_out);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  qh = 0;
  std::memset(qs, 0, 16);
  for (int i = 0; i < kQK; ++i) {
    int q = std::clamp(round_int((x[i] - m) * id), 0, kMax);
    qs[i % 16] |= static_cast<uint8_t>((q & 15) << (i < 16 ? 0 : 4));
    qh |= static_cast<uint32_t>(q >> 4) << i;
  }
}

inline int nibble(const uint8_t* qs, int i) { return i < 16 ? qs[i] & 15 : qs[i - 16] >> 4; }
inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void store_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

void quantize_q8_0(const float* x, BlockQ8_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float amax = max_abs(x, kQK);
    b[i].d = float_to_half(amax / 127.0f);
    const float d = half_to_float(b[i].d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < kQK; ++j) b[i].qs[j] = static_cast<int8_t>(std::clamp(round_int(x[j] * id), -127, 127));
  }
}

void quantize_q8_1(const float* x, BlockQ8_1* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float amax = max_abs(x, kQK);
    b[i].d = float_to_half(amax / 127.0f);
    const float d = half_to_float(b[i].d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
      b[i].qs[j] = static_cast<int8_t>(std::clamp(round_int(x[j] * id), -127, 127));
      sum += b[i].qs[j];
    }
    b[i].s = float_to_half(d * static_cast<float>(sum));
  }
}

void quantize_q8_k(const float* x, BlockQ8_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    const float amax = max_abs(x, kQKK);
    b[i].d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    for (int j = 0; j < kQKK; ++j) b[i].qs[j] = static_cast<int8_t>(std::clamp(round_int(x[j] * id), -127, 127));
    for (int g = 0; g < 16; ++g) {
      int s = 0;
      for (int j = 0; j < 16; ++j) s += b[i].qs[16 * g + j];
      b[i].bsums[g] = static_cast<int16_t>(s);
    }
  }
}

}  // namespace

int act_offset(DType t) {
  switch (t) {
    case DType::Q4_0: return 8;
    case DType::Q5_0: return 16;
    case DType::Q8_0: return 128;  // the SIMD kernels use q + 128 as the unsigned operand
    case DType::Q6_K: return 32;
    default: return 0;
  }
}

void quantize_act_ref(DType wt, const float* x, void* dst, int64_t n) {
  const int off = act_offset(wt);
  const int64_t bs = block_elems(wt);
  if (bs == kQK) {
    auto* b = static_cast<ActQ8x32*>(dst);
    for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
      const float amax = max_abs(x, kQK);
      const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
      int sum = 0;
      for (int j = 0; j < kQK; ++j) {
        b[i].qs[j] = static_cast<int8_t>(round_int(x[j] * id));
        sum += b[i].qs[j];
      }
      finish_act_block(b[i], wt, off, i, amax, sum);
    }
    return;
  }
  PL_CHECK(bs == kQKK, "quantize_act: unexpected block size {}", bs);
  auto* b = static_cast<ActQ8x256*>(dst);
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    const float amax = max_abs(x, kQKK);
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    std::memset(&b[i], 0, sizeof(ActQ8x256));
    for (int j = 0; j < kQKK; ++j) b[i].qs[j] = static_cast<int8_t>(round_int(x[j] * id));
    b[i].d = amax / 127.0f;
    for (int g = 0; g < 16; ++g) {
      int s = 0;
      for (int j = 0; j < 16; ++j) s += b[i].qs[16 * g + j];
      b[i].bias16[g] = -off * s;
    }
    for (int g = 0; g < 8; ++g) {
      int s = 0;
      for (int j = 0; j < 32; ++j) s += b[i].qs[32 * g + j];
      b[i].sum32[g] = static_cast<float>(s);
    }
  }
}

void dequantize_row_ref(DType t, const void* src, float* y, int64_t n) {
  const int64_t nb = n / block_elems(t);
  switch (t) {
    case DType::F32: std::memcpy(y, src, static_cast<size_t>(n) * 4); return;
    case DType::F16: {
      auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) y[i] = half_to_float(s[i]);
      return;
    }
    case DType::BF16: {
      auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_float(s[i]);
      return;
    }
    case DType::Q4_0: {
      auto* b = static_cast<const BlockQ4_0*>(src);
      for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const float d = half_to_float(b[i].d);
        for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(nibble(b[i].qs, j) - 8);
      }
      return;
    }
    case DType::Q4_1: {
      auto* b = static_cast<const BlockQ4_1*>(src);
      for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const float d = half_to_float(b[i].d), m = half_to_float(b[i].m);
        for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(nibble(b[i].qs, j)) + m;
      }
      return;
    }
    case DType::Q5_0: {
      auto* b = static_cast<const BlockQ5_0*>(src);
      for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const float d = half_to_float(b[i].d);
        const uint32_t qh = load_u32(b[i].qh);
        for (int j = 0; j < kQK; ++j) {
          int q = nibble(b[i].qs, j) | static_cast<int>(((qh >> j) & 1) << 4);
          y[j] = d * static_cast<float>(q - 16);
        }
      }
      return;
    }
    case DType::Q5_1: {
      auto* b = static_cast<const BlockQ5_1*>(src);
      for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const float d = half_to_float(b[i].d), m = half_to_float(b[i].m);
        const uint32_t qh = load_u32(b[i].qh);
        for (int j = 0; j < kQK; ++j) {
          int q = nibble(b[i].qs, j) | static_cast<int>(((qh >> j) & 1) << 4);
          y[j] = d * static_cast<float>(q) + m;
        }
      }
      return;
    }
    case DType::Q8_0: {
      auto* b = static_cast<const BlockQ8_0*>(src);
      for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const float d = half_to_float(b[i].d);
        for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(b[i].qs[j]);
      }
      return;
    }
    case DType::Q8_1: {
      auto* b = static_cast<const BlockQ8_1*>(src);
      for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const float d = half_to_float(b[i].d);
        for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(b[i].qs[j]);
      }
      return;
    }
    case DType::Q8_K: {
      auto* b = static_cast<const BlockQ8_K*>(src);
      for (int64_t i = 0; i < nb; ++i, y += kQKK)
        for (int j = 0; j < kQKK; ++j) y[j] = b[i].d * static_cast<float>(b[i].qs[j]);
      return;
    }
    case DType::Q4_K: dequantize_q4_k(src, y, n); return;
    case DType::Q5_K: dequantize_q5_k(src, y, n); return;
    case DType::Q6_K: dequantize_q6_k(src, y, n); return;
    default: fail("dequantize_row: type {} is not supported", dtype_name(t));
  }
}

void quantize_row_ref(DType t, const float* x, void* dst, int64_t n) {
  const int64_t nb = n / block_elems(t);
  switch (t) {
    case DType::F32: std::memcpy(dst, x, static_cast<size_t>(n) * 4); return;
    case DType::F16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = float_to_half(x[i]);
      return;
    }
    case DType::BF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = float_to_bf16(x[i]);
      return;
    }
    case DType::Q4_0: {
      auto* b = static_cast<BlockQ4_0*>(dst);
      uint32_t qh;
      for (int64_t i = 0; i < nb; ++i) quantize_sym_block<4>(x + i * kQK, b[i].d, b[i].qs, qh);
      return;
    }
    case DType::Q5_0: {
      auto* b = static_cast<BlockQ5_0*>(dst);
      for (int64_t i = 0; i < nb; ++i) {
        uint32_t qh;
        quantize_sym_block<5>(x + i * kQK, b[i].d, b[i].qs, qh);
        store_u32(b[i].qh, qh);
      }
      return;
    }
    case DType::Q4_1: {
      auto* b = static_cast<BlockQ4_1*>(dst);
      uint32_t qh;
      for (int64_t i = 0; i < nb; ++i) quantize_min_block<4>(x + i * kQK, b[i].d, b[i].m, b[i].qs, qh);
      return;
    }
    case DType::Q5_1: {
      auto* b = static_cast<BlockQ5_1*>(dst);
      for (int64_t i = 0; i < nb; ++i) {
        uint32_t qh;
        quantize_min_block<5>(x + i * kQK, b[i].d, b[i].m, b[i].qs, qh);
        store_u32(b[i].qh, qh);
      }
      return;
    }
    case DType::Q8_0: quantize_q8_0(x, static_cast<BlockQ8_0*>(dst), nb); return;
    case DType::Q8_1: quantize_q8_1(x, static_cast<BlockQ8_1*>(dst), nb); return;
    case DType::Q8_K: quantize_q8_k(x, static_cast<BlockQ8_K*>(dst), nb); return;
    case DType::Q4_K: quantize_q4_k(x, dst, n); return;
    case DType::Q5_K: quantize_q5_k(x, dst, n); return;
    case DType::Q6_K: quantize_q6_k(x, dst, n); return;
    default: fail("quantize_row: type {} is not supported", dtype_name(t));
  }
}

}  // namespace pl::kernels::detail
