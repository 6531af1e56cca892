// fp16 / bf16 conversions: exact against independent definitions, including
// rounding ties, overflow, subnormals, infinities and NaN.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "kernels/kernels.h"

namespace pl::kernels {
namespace {

// The value of a half from its definition, in double.
double half_value(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
  double v;
  if (exp == 0) v = std::ldexp(mant, -24);
  else if (exp == 31) v = mant ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else v = std::ldexp(1024 + mant, exp - 25);
  return sign ? -v : v;
}

TEST(Fp16, ToFloatExhaustive) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    const double want = half_value(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(f)) << h;
      // Payload bits are kept (shifted up).
      EXPECT_EQ((std::bit_cast<uint32_t>(f) >> 13) & 0x3FF, h & 0x3FF) << h;
    } else {
      ASSERT_EQ(static_cast<double>(f), want) << h;
      ASSERT_EQ(std::signbit(f), (h >> 15) != 0) << h;
    }
  }
}

// Checks that h is the round-to-nearest-even half of finite f by looking at
// the neighbours: no half is closer, and ties go to the even mantissa.
void expect_nearest_even(float f, uint16_t h) {
  const double x = f;
  const double v = half_value(h);
  if (std::isinf(v)) {
    // Overflow: only when |x| >= 65520 (half-way between 65504 and 2^16).
    EXPECT_GE(std::fabs(x), 65520.0) << f;
    return;
  }
  const double err = std::fabs(v - x);
  const uint16_t mag = h & 0x7FFF;
  for (int delta : {-1, 1}) {
    const int nm = mag + delta;
    if (nm < 0 || nm >= 0x7C00) continue;
    const double nv = half_value(static_cast<uint16_t>(nm | (h & 0x8000)));
    const double nerr = std::fabs(nv - x);
    ASSERT_LE(err, nerr) << "f=" << f << " h=" << h;
    if (err == nerr) {
      ASSERT_EQ(mag & 1, 0) << "tie not to even: f=" << f << " h=" << h;
    }
  }
  if (x != 0) {
    ASSERT_EQ(std::signbit(x), (h >> 15) != 0);
  }
}

TEST(Fp16, FromFloatRoundsToNearestEven) {
  // Every half and the midpoints between neighbours (exact ties), and points just off them.
  for (uint32_t m = 0; m < 0x7C00; ++m) {
    for (uint16_t s : {uint16_t{0}, uint16_t{0x8000}}) {
      const uint16_t h = static_cast<uint16_t>(m | s);
      const float f = fp16_to_fp32(h);
      ASSERT_EQ(fp32_to_fp16(f), h) << m;
      const float next = fp16_to_fp32(static_cast<uint16_t>((m + 1) | s));
      if (m + 1 < 0x7C00) {
        const float mid = static_cast<float>((static_cast<double>(f) + next) / 2);  // exact in fp32
        expect_nearest_even(mid, fp32_to_fp16(mid));
        expect_nearest_even(std::nextafter(mid, 0.0f), fp32_to_fp16(std::nextafter(mid, 0.0f)));
        expect_nearest_even(std::nextafter(mid, 1e9f * (s ? -1 : 1)),
                            fp32_to_fp16(std::nextafter(mid, 1e9f * (s ? -1 : 1))));
      }
    }
  }
  std::mt19937 rng(1);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 1000000; ++i) {
    const float f = std::bit_cast<float>(bits(rng));
    if (std::isnan(f) || std::isinf(f)) continue;
    expect_nearest_even(f, fp32_to_fp16(f));
  }
}

TEST(Fp16, FromFloatSpecialValues) {
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xC000);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(65519.99f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);  // tie between 65504 and 65536: rounds to even (inf)
  EXPECT_EQ(fp32_to_fp16(1e10f), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-1e10f), 0xFC00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_EQ(fp32_to_fp16(0x1p-24f), 0x0001);       // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(0x1p-25f), 0x0000);       // tie with 0 -> even (0)
  EXPECT_EQ(fp32_to_fp16(0x1.8p-25f), 0x0001);     // 0.75 ulp -> 1 ulp
  EXPECT_EQ(fp32_to_fp16(0x3p-25f), 0x0002);       // 1.5 ulp tie -> 2 (even)
  EXPECT_EQ(fp32_to_fp16(0x1p-14f), 0x0400);       // smallest normal
  EXPECT_EQ(fp32_to_fp16(0x1.ff8p-15f), 0x03FF);   // largest subnormal
  EXPECT_EQ(fp32_to_fp16(0x1.ffcp-15f), 0x0400);   // largest subnormal + half ulp: tie -> normal (even)
  EXPECT_EQ(fp32_to_fp16(1.0f + 0x1p-11f), 0x3C00);        // tie -> even
  EXPECT_EQ(fp32_to_fp16(1.0f + 0x3p-11f), 0x3C02);        // tie -> even (up)
  EXPECT_EQ(fp32_to_fp16(1e-30f), 0x0000);
  const uint16_t nan = fp32_to_fp16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7C00, 0x7C00);
  EXPECT_NE(nan & 0x3FF, 0);
  // A signalling NaN whose payload sits only in the low bits must not become inf.
  const uint16_t snan = fp32_to_fp16(std::bit_cast<float>(0x7F800001u));
  EXPECT_EQ(snan & 0x7C00, 0x7C00);
  EXPECT_NE(snan & 0x3FF, 0);
}

TEST(Bf16, Conversions) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_fp32(static_cast<uint16_t>(h));
    ASSERT_EQ(std::bit_cast<uint32_t>(f), h << 16);
    if (!std::isnan(f)) {
      ASSERT_EQ(fp32_to_bf16(f), h);
    }
  }
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie -> even (down)
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie -> even (up)
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);  // above the tie
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F807FFFu)), 0x3F80);  // below the tie
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x7F7FFFFFu)), 0x7F80);  // max float rounds to inf
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(fp32_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x00000001u)), 0x0000);  // tiny subnormal -> 0
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x00018000u)), 0x0002);  // subnormal tie -> even
  const uint16_t snan = fp32_to_bf16(std::bit_cast<float>(0x7F800001u));
  EXPECT_TRUE(std::isnan(bf16_to_fp32(snan)));
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

}  // namespace
}  // namespace pl::kernels
