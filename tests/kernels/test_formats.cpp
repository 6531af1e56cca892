// Block formats: hand-built blocks whose values are computed by hand from the
// format definition (pinning the exact bit layout), and quantize -> dequantize
// error bounds on random data.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "kernels/blocks.h"
#include "test_util.h"

namespace pl::kernels {
namespace {

std::vector<float> dequant(DType t, const void* block, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  dequantize_row(t, block, out.data(), n);
  return out;
}

// qs[i] = i | (15 - i) << 4: element i (< 16) has level i, element 16 + i level 15 - i.
void fill_nibbles(uint8_t* qs) {
  for (int i = 0; i < 16; ++i) qs[i] = static_cast<uint8_t>(i | ((15 - i) << 4));
}

TEST(Formats, Q4_0KnownBlock) {
  BlockQ4_0 b;
  b.d = 0x3800;  // 0.5
  fill_nibbles(b.qs);
  auto y = dequant(DType::Q4_0, &b, 32);
  EXPECT_EQ(y[0], -4.0f);   // 0.5 * (0 - 8)
  EXPECT_EQ(y[5], -1.5f);   // 0.5 * (5 - 8)
  EXPECT_EQ(y[15], 3.5f);   // 0.5 * (15 - 8)
  EXPECT_EQ(y[16], 3.5f);   // high nibble of qs[0] = 15
  EXPECT_EQ(y[20], 1.5f);   // high nibble of qs[4] = 11
  EXPECT_EQ(y[31], -4.0f);  // high nibble of qs[15] = 0
}

TEST(Formats, Q4_1KnownBlock) {
  BlockQ4_1 b;
  b.d = 0x3400;  // 0.25
  b.m = 0xBC00;  // -1.0
  fill_nibbles(b.qs);
  auto y = dequant(DType::Q4_1, &b, 32);
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[15], 2.75f);
  EXPECT_EQ(y[16], 2.75f);
  EXPECT_EQ(y[20], 1.75f);
}

TEST(Formats, Q5_0KnownBlock) {
  BlockQ5_0 b;
  b.d = 0x3C00;  // 1.0
  const uint8_t qh[4] = {0x01, 0x00, 0x00, 0x80};  // u32 bits 0 and 31
  std::memcpy(b.qh, qh, 4);
  fill_nibbles(b.qs);
  auto y = dequant(DType::Q5_0, &b, 32);
  EXPECT_EQ(y[0], 0.0f);     // (0 | 16) - 16
  EXPECT_EQ(y[1], -15.0f);   // 1 - 16
  EXPECT_EQ(y[15], -1.0f);   // 15 - 16
  EXPECT_EQ(y[30], -15.0f);  // high nibble of qs[14] = 1, no high bit
  EXPECT_EQ(y[31], 0.0f);    // high nibble of qs[15] = 0, plus bit 31
}

TEST(Formats, Q5_1KnownBlock) {
  BlockQ5_1 b;
  b.d = 0x3800;  // 0.5
  b.m = 0x4000;  // 2.0
  const uint8_t qh[4] = {0x00, 0x00, 0x01, 0x00};  // u32 bit 16
  std::memcpy(b.qh, qh, 4);
  fill_nibbles(b.qs);
  auto y = dequant(DType::Q5_1, &b, 32);
  EXPECT_EQ(y[0], 2.0f);
  EXPECT_EQ(y[16], 17.5f);  // (15 | 16) * 0.5 + 2
  EXPECT_EQ(y[17], 9.0f);   // 14 * 0.5 + 2
}

TEST(Formats, Q8_0KnownBlock) {
  BlockQ8_0 b;
  b.d = 0x3400;  // 0.25
  for (int i = 0; i < 32; ++i) b.qs[i] = static_cast<int8_t>(i - 16);
  auto y = dequant(DType::Q8_0, &b, 32);
  EXPECT_EQ(y[0], -4.0f);
  EXPECT_EQ(y[16], 0.0f);
  EXPECT_EQ(y[31], 3.75f);
}

// Scales {1,2,3,4,33,40,63,17}, mins {0,5,10,63,32,1,2,48} packed by hand:
// bytes 0-3: sc[j] | (sc[j+4] >> 4) << 6; bytes 4-7: m[j] | (m[j+4] >> 4) << 6;
// bytes 8-11: (sc[j+4] & 15) | (m[j+4] & 15) << 4.
constexpr uint8_t kKScales[12] = {0x81, 0x82, 0xC3, 0x44, 0x80, 0x05, 0x0A, 0xFF, 0x01, 0x18, 0x2F, 0x01};

TEST(Formats, Q4_KScalePacking) {
  const int want_sc[8] = {1, 2, 3, 4, 33, 40, 63, 17}, want_m[8] = {0, 5, 10, 63, 32, 1, 2, 48};
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    kquant_scale_min(kKScales, j, sc, m);
    EXPECT_EQ(sc, want_sc[j]) << j;
    EXPECT_EQ(m, want_m[j]) << j;
  }
  uint8_t packed[12];
  uint8_t sc8[8], m8[8];
  for (int j = 0; j < 8; ++j) sc8[j] = static_cast<uint8_t>(want_sc[j]), m8[j] = static_cast<uint8_t>(want_m[j]);
  kquant_pack_scales(sc8, m8, packed);
  EXPECT_EQ(0, std::memcmp(packed, kKScales, 12));
}

TEST(Formats, Q4_KKnownBlock) {
  BlockQ4_K b;
  b.d = 0x3C00;     // 1.0
  b.dmin = 0x3800;  // 0.5
  std::memcpy(b.scales, kKScales, 12);
  for (int k = 0; k < 128; ++k) b.qs[k] = static_cast<uint8_t>(k);
  auto y = dequant(DType::Q4_K, &b, 256);
  // element e: sub-block j = e / 32, l = e % 32, byte qs[32 * (j / 2) + l], low nibble if j even.
  EXPECT_EQ(y[0], 0.0f);      // q 0
  EXPECT_EQ(y[37], -2.5f);    // j1: hi(qs[5]) = 0 -> 2*0 - 0.5*5
  EXPECT_EQ(y[70], 13.0f);    // j2: lo(qs[38]) = 6 -> 3*6 - 0.5*10
  EXPECT_EQ(y[127], -19.5f);  // j3: hi(qs[63]) = 3 -> 4*3 - 0.5*63
  EXPECT_EQ(y[140], 380.0f);  // j4: lo(qs[76]) = 12 -> 33*12 - 0.5*32
  EXPECT_EQ(y[191], 199.5f);  // j5: hi(qs[95]) = 5 -> 40*5 - 0.5*1
  EXPECT_EQ(y[200], 503.0f);  // j6: lo(qs[104]) = 8 -> 63*8 - 0.5*2
  EXPECT_EQ(y[255], 95.0f);   // j7: hi(qs[127]) = 7 -> 17*7 - 0.5*48
}

TEST(Formats, Q5_KKnownBlock) {
  BlockQ5_K b;
  b.d = 0x3C00;
  b.dmin = 0x3800;
  std::memcpy(b.scales, kKScales, 12);
  for (int k = 0; k < 128; ++k) b.qs[k] = static_cast<uint8_t>(k);
  for (int l = 0; l < 32; ++l) b.qh[l] = static_cast<uint8_t>(l);  // bit j of qh[l]: +16 in sub-block j
  auto y = dequant(DType::Q5_K, &b, 256);
  EXPECT_EQ(y[16], 0.0f);     // j0 l16: qh bit0 of 16 = 0, lo(qs[16]) = 0
  EXPECT_EQ(y[17], 17.0f);    // j0 l17: qh bit0 of 17 = 1 -> 1 + 16 = 17 -> 1*17 - 0
  EXPECT_EQ(y[37], -2.5f);    // j1 l5: bit1 of 5 = 0, hi(qs[5]) = 0
  EXPECT_EQ(y[70], 61.0f);    // j2 l6: bit2 of 6 = 1 -> 6 + 16 = 22 -> 3*22 - 5
  EXPECT_EQ(y[140], 380.0f);  // j4 l12: bit4 of 12 = 0
  EXPECT_EQ(y[208], -1.0f);   // j6 l16: bit6 of 16 = 0, lo(qs[112]) = 0 -> 0 - 0.5*2
  EXPECT_EQ(y[223], 944.0f);  // j6 l31: lo(qs[127]) = 15 -> 63*15 - 1
  EXPECT_EQ(y[255], 95.0f);
}

TEST(Formats, Q6_KKnownBlock) {
  BlockQ6_K b;
  for (int k = 0; k < 128; ++k) b.ql[k] = static_cast<uint8_t>(k);
  for (int k = 0; k < 64; ++k) b.qh[k] = 0xE4;  // 2-bit fields 0,1,2,3 at shifts 0,2,4,6
  for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<int8_t>(s - 8);
  b.d = 0x3800;  // 0.5
  auto y = dequant(DType::Q6_K, &b, 256);
  EXPECT_EQ(y[3], 116.0f);    // lo(ql[3]) = 3 | 0<<4; scale[0] = -8: 0.5 * -8 * (3 - 32)
  EXPECT_EQ(y[20], 98.0f);    // lo(ql[20]) = 4; scale[1] = -7: 0.5 * -7 * (4 - 32)
  EXPECT_EQ(y[40], 24.0f);    // lo(ql[40]) = 8 | 1<<4 = 24; scale[2] = -6: 0.5 * -6 * -8
  EXPECT_EQ(y[81], -1.5f);    // hi(ql[17]) = 1 | 2<<4 = 33; scale[5] = -3: 0.5 * -3 * 1
  EXPECT_EQ(y[127], -9.5f);   // hi(ql[63]) = 3 | 3<<4 = 51; scale[7] = -1: 0.5 * -1 * 19
  EXPECT_EQ(y[144], -16.0f);  // half 1, l16: lo(ql[80]) = 0; scale[9] = 1: 0.5 * 1 * -32
  EXPECT_EQ(y[197], 8.0f);    // half 1, l5 + 64: hi(ql[69]) = 4 | 2<<4 = 36; scale[12] = 4: 0.5*4*4
  EXPECT_EQ(y[255], 80.5f);   // half 1, l31 + 96: hi(ql[127]) = 7 | 3<<4 = 55; scale[15] = 7: 0.5*7*23
}

TEST(Formats, Q8_KAndQ8_1) {
  auto x = test::random_floats(512, 7);
  std::vector<BlockQ8_K> k(2);
  quantize_row(DType::Q8_K, x.data(), k.data(), 512);
  for (int g = 0; g < 16; ++g) {
    int s = 0;
    for (int j = 0; j < 16; ++j) s += k[0].qs[16 * g + j];
    EXPECT_EQ(k[0].bsums[g], s);
  }
  std::vector<BlockQ8_1> q(16);
  quantize_row(DType::Q8_1, x.data(), q.data(), 512);
  int s = 0;
  for (int j = 0; j < 32; ++j) s += q[3].qs[j];
  EXPECT_NEAR(fp16_to_fp32(q[3].s), fp16_to_fp32(q[3].d) * s, 1e-3 * std::fabs(fp16_to_fp32(q[3].d) * s) + 1e-6);
  for (DType t : {DType::Q8_K, DType::Q8_1}) {
    std::vector<float> y(512);
    dequantize_row(t, t == DType::Q8_K ? static_cast<void*>(k.data()) : static_cast<void*>(q.data()), y.data(), 512);
    for (int i = 0; i < 512; ++i) ASSERT_NEAR(y[i], x[i], 0.02) << i;
  }
}

// Round trip RMSE relative to the data's RMS on N(0,1) data, with the bound
// each format must meet. The bounds sit just above what the format's grid
// allows: a b-bit block grid over a Gaussian block has step ~ range / 2^b and
// error ~ step / sqrt(12); the K-quants' searched scales and mins do better
// than the plain min/max grids of the same width (checked below).
struct RoundTrip {
  DType type;
  double max_rel_rmse;
};

class FormatRoundTrip : public ::testing::TestWithParam<RoundTrip> {};

TEST_P(FormatRoundTrip, ErrorWithinBound) {
  const RoundTrip p = GetParam();
  const int64_t n = 256 * 64;
  for (uint32_t seed : {1u, 2u}) {
    auto x = test::random_floats(static_cast<size_t>(n), seed);
    // A few outliers, as real weight rows have.
    for (int64_t i = 0; i < n; i += 997) x[static_cast<size_t>(i)] *= 6.0f;
    std::vector<uint8_t> q(row_bytes(p.type, static_cast<size_t>(n)));
    quantize_row(p.type, x.data(), q.data(), n);
    std::vector<float> y(static_cast<size_t>(n));
    dequantize_row(p.type, q.data(), y.data(), n);
    double se = 0;
    for (int64_t i = 0; i < n; ++i) se += (static_cast<double>(y[i]) - x[i]) * (y[i] - x[i]);
    const double rel = std::sqrt(se / static_cast<double>(n)) / test::rms(x.data(), x.size());
    RecordProperty("rel_rmse", std::to_string(rel));
    EXPECT_LT(rel, p.max_rel_rmse) << dtype_name(p.type);
    std::printf("  %-5s rel RMSE %.5f (bound %.4f)\n", std::string(dtype_name(p.type)).c_str(), rel, p.max_rel_rmse);
  }
}

INSTANTIATE_TEST_SUITE_P(All, FormatRoundTrip,
                         ::testing::Values(RoundTrip{DType::F32, 1e-12}, RoundTrip{DType::F16, 4e-4},
                                           RoundTrip{DType::BF16, 3e-3}, RoundTrip{DType::Q8_0, 0.0075},
                                           RoundTrip{DType::Q4_0, 0.125}, RoundTrip{DType::Q4_1, 0.11},
                                           RoundTrip{DType::Q5_0, 0.062}, RoundTrip{DType::Q5_1, 0.055},
                                           RoundTrip{DType::Q4_K, 0.10}, RoundTrip{DType::Q5_K, 0.05},
                                           RoundTrip{DType::Q6_K, 0.025}, RoundTrip{DType::Q8_K, 0.013}),
                         [](const auto& info) { return std::string(dtype_name(info.param.type)); });

// The scale/min search must beat the plain min/max grid of the same format.
TEST(Formats, KQuantSearchBeatsMinMax) {
  const int64_t n = 256 * 64;
  auto x = test::random_floats(static_cast<size_t>(n), 3);
  std::vector<BlockQ4_K> q(static_cast<size_t>(n / 256));
  quantize_row(DType::Q4_K, x.data(), q.data(), n);
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row(DType::Q4_K, q.data(), y.data(), n);
  double se_search = 0, se_minmax = 0;
  for (int64_t i = 0; i < n; ++i) se_search += (y[i] - x[i]) * (y[i] - x[i]);
  // Plain min/max grid per 32 with exact float scales (an upper bound on what
  // an unsearched Q4_K could reach).
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x.data() + 32 * b;
    float lo = std::min(0.0f, *std::min_element(xb, xb + 32)), hi = *std::max_element(xb, xb + 32);
    const float d = (hi - lo) / 15;
    for (int i = 0; i < 32; ++i) {
      const float q4 = std::clamp(std::nearbyint((xb[i] - lo) / d), 0.0f, 15.0f);
      se_minmax += (q4 * d + lo - xb[i]) * (q4 * d + lo - xb[i]);
    }
  }
  std::printf("  Q4_K searched SSE %.3f vs min/max grid %.3f\n", se_search, se_minmax);
  EXPECT_LT(se_search, 0.92 * se_minmax);
}

TEST(Formats, ZeroAndConstantBlocks) {
  for (DType t : test::weight_types()) {
    const int64_t n = 256;
    for (float c : {0.0f, 1.5f, -3.0f}) {
      std::vector<float> x(static_cast<size_t>(n), c);
      std::vector<uint8_t> q(row_bytes(t, n));
      quantize_row(t, x.data(), q.data(), n);
      std::vector<float> y(static_cast<size_t>(n));
      dequantize_row(t, q.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(y[i], c, 0.02 * std::fabs(c) + 1e-6) << dtype_name(t) << " c=" << c << " i=" << i;
    }
  }
}

TEST(Formats, RejectsBadSizesAndTypes) {
  float x[64] = {};
  uint8_t q[256];
  EXPECT_THROW(quantize_row(DType::Q4_0, x, q, 33), Error);
  EXPECT_THROW(dequantize_row(DType::Q4_K, q, x, 32), Error);
  EXPECT_THROW(quantize_row(DType::IQ2_XS, x, q, 256), Error);
  EXPECT_FALSE(is_supported(DType::Q2_K));
  EXPECT_TRUE(is_supported(DType::Q6_K));
  EXPECT_FALSE(is_supported(DType::Q8_K));
  EXPECT_TRUE(can_quantize(DType::Q8_K));
}

}  // namespace
}  // namespace pl::kernels
