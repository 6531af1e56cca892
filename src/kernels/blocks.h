// Block layouts of the GGUF quantized types, bit-exact as the file format
// defines them (little-endian, packed, no padding), plus the internal
// activation formats the matmul kernels quantize activations into.
//
// Value of element i of a block (q = the stored integer):
//   Q4_0  x = d * (q - 8),   q 4 bits: q[i] = qs[i] & 15, q[i+16] = qs[i] >> 4      (i < 16)
//   Q4_1  x = d * q + m,     same nibble order as Q4_0
//   Q5_0  x = d * (q - 16),  q = nibble (as Q4_0) | bit i of qh (little-endian u32) << 4
//   Q5_1  x = d * q + m,     same bits as Q5_0
//   Q8_0  x = d * q,         q int8
//   Q8_1  x = d * q,         s = d * sum(q) (a helper for dot products)
//   Q4_K  256 = 8 sub-blocks of 32 with 6-bit scale sc[j] and min m[j] (see kquant_scale_min):
//         x = d * sc[j] * q - dmin * m[j]; 64-element chunk c uses qs[32c..32c+31]:
//         low nibbles are sub-block 2c, high nibbles sub-block 2c+1.
//   Q5_K  as Q4_K, plus bit j of qh[l] is bit 4 of element l of sub-block j.
//   Q6_K  256 = 16 sub-blocks of 16 with int8 scales: x = d * scales[s] * (q - 32), q 6 bits.
//         128-element half h uses ql[64h..], qh[32h..], scales[8h..]; for l < 32:
//         element l    = ql[l] & 15      | (qh[l] >> 0 & 3) << 4
//         element l+32 = ql[l+32] & 15   | (qh[l] >> 2 & 3) << 4
//         element l+64 = ql[l] >> 4      | (qh[l] >> 4 & 3) << 4
//         element l+96 = ql[l+32] >> 4   | (qh[l] >> 6 & 3) << 4
//         and element e of the half has scale scales[8h + e / 16].
//   Q8_K  x = d * q, d is fp32, bsums[g] = sum of q over elements 16g..16g+15.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace pl::kernels {

inline constexpr int kQK = 32;    // legacy block size
inline constexpr int kQKK = 256;  // K-quant super-block size

struct BlockQ4_0 {
  uint16_t d;  // fp16
  uint8_t qs[16];
};
struct BlockQ4_1 {
  uint16_t d;  // fp16
  uint16_t m;  // fp16
  uint8_t qs[16];
};
struct BlockQ5_0 {
  uint16_t d;  // fp16
  uint8_t qh[4];
  uint8_t qs[16];
};
struct BlockQ5_1 {
  uint16_t d;  // fp16
  uint16_t m;  // fp16
  uint8_t qh[4];
  uint8_t qs[16];
};
struct BlockQ8_0 {
  uint16_t d;  // fp16
  int8_t qs[32];
};
struct BlockQ8_1 {
  uint16_t d;  // fp16
  uint16_t s;  // fp16, d * sum(qs)
  int8_t qs[32];
};
struct BlockQ4_K {
  uint16_t d;     // fp16, scale of the 6-bit sub-block scales
  uint16_t dmin;  // fp16, scale of the 6-bit sub-block mins
  uint8_t scales[12];
  uint8_t qs[128];
};
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;  // fp16
};
struct BlockQ8_K {
  float d;
  int8_t qs[256];
  int16_t bsums[16];
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

// Scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block. The 12 bytes
// hold eight 6-bit scales and eight 6-bit mins: bytes 0-3 keep scales 0-3 in
// their low 6 bits, bytes 4-7 mins 0-3; scales/mins 4-7 keep their low 4 bits
// in the nibbles of bytes 8-11 and their top 2 bits in the spare top bits of
// bytes 0-3 (scales) and 4-7 (mins).
inline void kquant_scale_min(const uint8_t* s, int j, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}
// Inverse of kquant_scale_min: packs sc[8], m[8] (each 0..63).
inline void kquant_pack_scales(const uint8_t* sc, const uint8_t* m, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

// ---- Internal activation formats (not file formats) ----
//
// The matmul quantizes activations once per call into one of these. They keep
// fp32 scales (no fp16 rounding of the activation scale) and precomputed sums
// so the integer kernels can fold the weights' zero-point into the int32
// accumulator: for a weight type whose value is d * (q - offset), the kernel
// starts the int32 sum at `bias` = -offset * sum(xq) and then adds q * xq with
// unsigned q.

// The int32 whose bits are the float 1.5 * 2^23. Adding an integer s with
// |s| < 2^22 to it gives the bits of the float 1.5 * 2^23 + s exactly, so a
// kernel that starts its int sum there gets the sum as a float for free, and
// fma(that, d, -1.5 * 2^23 * d) = round(s * d) exactly when d has at most 21
// significant bits (an fp16 scale, or one times a 6-bit sub-scale): the
// conversion instruction disappears from the per-block epilogue.
inline constexpr int32_t kFloatSumStart = 0x4B400000;
inline constexpr float kFloatSumStartValue = std::bit_cast<float>(kFloatSumStart);
static_assert(kFloatSumStartValue == 1.5f * (1 << 23));

// For the 32-element weight blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0).
struct ActQ8x32 {
  int8_t qs[32];
  float d;       // x ~= d * qs
  int32_t bias;  // -offset * sum(qs), offset of the weight type (0 for Q4_1/Q5_1)
  float dsum;    // d * sum(qs), for the weight types with a min (Q4_1/Q5_1)
  // kFloatSumStart + bias * act_bias_scale(weight type, block): a start for
  // kernels that read the finished int32 sum's bits as the float
  // 1.5 * 2^23 + sum (see kFloatSumStart).
  int32_t bias_fbits;
};
static_assert(sizeof(ActQ8x32) == 48);

// For the K-quants (super-block of 256).
struct ActQ8x256 {
  int8_t qs[256];
  float d;
  int32_t unused[3];
  int32_t bias16[16];  // -offset * sum of qs over each 16 (Q6_K: offset 32)
  float sum32[8];      // sum of qs over each 32, as float (the Q4_K/Q5_K mins)
  int32_t unused2[4];
};
static_assert(sizeof(ActQ8x256) == 384);

}  // namespace pl::kernels
