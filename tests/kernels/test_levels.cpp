// Every SIMD level against the scalar reference, in-process, for every level
// this CPU supports. Integer parts are exact, so the bounds only cover float
// summation order and FMA rounding: |simd - ref| <= 2e-5 * sum_k |w_k * x_k|
// per output (plus a tiny absolute floor), activation quantization bit-exact.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "test_util.h"

namespace pl::kernels {
namespace {

using detail::ActFormat;
using detail::LevelTable;
using test::supported_levels;
using test::table_of;

std::vector<CpuLevel> simd_levels() {
  std::vector<CpuLevel> v;
  for (CpuLevel l : supported_levels())
    if (l != CpuLevel::Scalar) v.push_back(l);
  return v;
}

// Sum of |w * x| over a row (dequantized w, fp32 x): the scale of rounding error.
double abs_dot(const std::vector<float>& w, const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::fabs(static_cast<double>(w[static_cast<size_t>(i)]) * x[i]);
  return s;
}

TEST(Levels, ReportsWhatRuns) {
  std::printf("  supported: %s, active: %s\n", std::string(cpu_level_name(cpu_level_supported())).c_str(),
              std::string(cpu_level_name()).c_str());
  if (simd_levels().empty()) GTEST_SKIP() << "this CPU has no SIMD level; only the scalar reference runs";
}

TEST(Levels, ActivationQuantizationBitExact) {
  for (CpuLevel l : simd_levels()) {
    const LevelTable& simd = table_of(l);
    for (DType t : test::weight_types()) {
      const detail::TypeTraits* tr = detail::scalar_table().traits(t);
      if (tr->act == ActFormat::F32) continue;
      // 16-block groups and a tail (the AVX-512 level takes 512 elements at a
      // time), with an all-zero block inside a group.
      for (int64_t n : {256, 512, 544, 2048 + 256}) {
        auto x = test::random_floats(static_cast<size_t>(n), 11 + static_cast<uint32_t>(n));
        x[3] = 0.0f;
        if (n >= 512) std::fill(x.begin() + 160, x.begin() + 192, 0.0f);
        const size_t rb = detail::act_row_bytes(tr->act, n);
        std::vector<uint8_t> a(rb), b(rb);
        detail::quantize_act_ref(t, x.data(), a.data(), n);
        simd.vec.quantize_act(t, x.data(), b.data(), n);
        ASSERT_EQ(0, std::memcmp(a.data(), b.data(), rb)) << cpu_level_name(l) << " " << dtype_name(t) << " n=" << n;
      }
      std::vector<float> zeros(256, 0.0f);
      const size_t rb = detail::act_row_bytes(tr->act, 256);
      std::vector<uint8_t> a(rb), b(rb);
      detail::quantize_act_ref(t, zeros.data(), a.data(), 256);
      simd.vec.quantize_act(t, zeros.data(), b.data(), 256);
      ASSERT_EQ(0, std::memcmp(a.data(), b.data(), rb));
    }
  }
}

TEST(Levels, DequantizeMatchesScalar) {
  for (CpuLevel l : simd_levels()) {
    for (DType t : test::weight_types()) {
      const int64_t n = 2048;
      auto w = test::random_weights(t, 1, n, 5);
      std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
      detail::scalar_table().traits(t)->to_float(w.data(), a.data(), n);
      table_of(l).traits(t)->to_float(w.data(), b.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(a[i], b[i], 1e-6 * std::fabs(a[i]) + 1e-12)
            << cpu_level_name(l) << " " << dtype_name(t) << " i=" << i;
    }
  }
}

TEST(Levels, VecDotMatchesScalar) {
  for (CpuLevel l : simd_levels()) {
    for (DType t : test::weight_types()) {
      const detail::TypeTraits* ref = detail::scalar_table().traits(t);
      const detail::TypeTraits* simd = table_of(l).traits(t);
      for (int64_t n : {256, 768, 2048, 5632}) {
        auto w = test::random_weights(t, 3, n, 21 + static_cast<uint32_t>(n));
        auto x = test::random_floats(static_cast<size_t>(n), 99);
        std::vector<uint8_t> xa(std::max(detail::act_row_bytes(ref->act, n), size_t{1}));
        const void* xp = x.data();
        if (ref->act != ActFormat::F32) {
          detail::quantize_act_ref(t, x.data(), xa.data(), n);
          xp = xa.data();
        }
        const size_t rb = row_bytes(t, static_cast<size_t>(n));
        for (int r = 0; r < 3; ++r) {
          std::vector<float> wf(static_cast<size_t>(n));
          dequantize_row(t, w.data() + r * rb, wf.data(), n);
          const float a = ref->vec_dot(n, w.data() + r * rb, xp);
          const float b = simd->vec_dot(n, w.data() + r * rb, xp);
          ASSERT_NEAR(a, b, 2e-5 * abs_dot(wf, x.data(), n) + 1e-6)
              << cpu_level_name(l) << " " << dtype_name(t) << " n=" << n << " r=" << r;
        }
      }
    }
  }
}

// The tiled GEMM of each level against the scalar level, through the full
// matmul driver (activation conversion, thread split, tails).
TEST(Levels, MatmulMatchesScalar) {
  ThreadPool pool(2);
  const std::vector<CpuLevel> levels = simd_levels();
  if (levels.empty()) GTEST_SKIP() << "no SIMD level on this CPU";
  for (DType t : test::weight_types()) {
    for (int64_t n_cols : {256, 2048}) {
      for (int64_t n_rows : {1, 15, 33, 71}) {
        auto w = test::random_weights(t, n_rows, n_cols, 7 + static_cast<uint32_t>(n_rows));
        const WeightView wv{t, n_rows, n_cols, w.data()};
        std::vector<float> wf(static_cast<size_t>(n_rows * n_cols));
        const size_t rb = row_bytes(t, static_cast<size_t>(n_cols));
        for (int64_t r = 0; r < n_rows; ++r) dequantize_row(t, w.data() + r * rb, wf.data() + r * n_cols, n_cols);
        for (int64_t n_tok : {1, 3, 17, 64, 300}) {
          if (n_cols == 2048 && n_tok == 300 && n_rows > 33) continue;  // keep the scalar side quick
          const int64_t ldx = n_cols + 8, ldy = n_rows + 3;
          auto x = test::random_floats(static_cast<size_t>(n_tok * ldx), 1000 + static_cast<uint32_t>(n_tok));
          std::vector<float> ya(static_cast<size_t>(n_tok * ldy), -7.0f);
          detail::matmul_with(detail::scalar_table(), wv, x.data(), ldx, n_tok, ya.data(), ldy, pool);
          std::vector<double> tol(ya.size(), 0.0);
          for (int64_t tk = 0; tk < n_tok; ++tk)
            for (int64_t r = 0; r < n_rows; ++r) {
              std::vector<float> wr(wf.begin() + r * n_cols, wf.begin() + (r + 1) * n_cols);
              tol[static_cast<size_t>(tk * ldy + r)] = 2e-5 * abs_dot(wr, x.data() + tk * ldx, n_cols) + 1e-6;
            }
          for (CpuLevel l : levels) {
            std::vector<float> yb(static_cast<size_t>(n_tok * ldy), -7.0f);
            detail::matmul_with(table_of(l), wv, x.data(), ldx, n_tok, yb.data(), ldy, pool);
            for (int64_t tk = 0; tk < n_tok; ++tk) {
              for (int64_t r = 0; r < ldy; ++r) {
                const size_t i = static_cast<size_t>(tk * ldy + r);
                if (r >= n_rows) {
                  ASSERT_EQ(yb[i], -7.0f) << "wrote past n_rows";
                  continue;
                }
                ASSERT_NEAR(ya[i], yb[i], tol[i]) << cpu_level_name(l) << " " << dtype_name(t) << " rows=" << n_rows
                                                  << " cols=" << n_cols << " n_tok=" << n_tok << " t=" << tk
                                                  << " r=" << r;
              }
            }
          }
        }
      }
    }
  }
}

// Short and odd row lengths: float tails (K % 16 != 0), fewer units than one
// unpack chunk, single super-blocks.
TEST(Levels, MatmulOddShapesMatchScalar) {
  ThreadPool pool(2);
  const std::vector<CpuLevel> levels = simd_levels();
  if (levels.empty()) GTEST_SKIP() << "no SIMD level on this CPU";
  for (DType t : test::weight_types()) {
    const int64_t bs = detail::block_elems(t);
    const std::vector<int64_t> cols = bs == 1 ? std::vector<int64_t>{1, 17, 37, 300} :
                                      bs == 32 ? std::vector<int64_t>{32, 96, 288} : std::vector<int64_t>{256, 768};
    for (int64_t n_cols : cols) {
      for (int64_t n_tok : {1, 2, 9, 13, 20, 70}) {
        const int64_t n_rows = 37;
        auto w = test::random_weights(t, n_rows, n_cols, 3);
        const WeightView wv{t, n_rows, n_cols, w.data()};
        auto x = test::random_floats(static_cast<size_t>(n_tok * n_cols), 8);
        std::vector<float> ya(static_cast<size_t>(n_tok * n_rows));
        detail::matmul_with(detail::scalar_table(), wv, x.data(), n_cols, n_tok, ya.data(), n_rows, pool);
        for (CpuLevel l : levels) {
          std::vector<float> yb(ya.size());
          detail::matmul_with(table_of(l), wv, x.data(), n_cols, n_tok, yb.data(), n_rows, pool);
          for (size_t i = 0; i < ya.size(); ++i)
            ASSERT_NEAR(ya[i], yb[i], 2e-5 * (std::fabs(ya[i]) + 1.0) * std::sqrt(static_cast<double>(n_cols)))
                << cpu_level_name(l) << " " << dtype_name(t) << " cols=" << n_cols << " n_tok=" << n_tok << " i=" << i;
        }
      }
    }
  }
}

TEST(Levels, VectorHelpersMatchScalar) {
  const LevelTable& ref = detail::scalar_table();
  for (CpuLevel l : simd_levels()) {
    const LevelTable& simd = table_of(l);
    for (int64_t n : {1, 7, 16, 33, 100, 1000}) {
      auto a = test::random_floats(static_cast<size_t>(n), 1);
      auto b = test::random_floats(static_cast<size_t>(n), 2);
      std::vector<uint16_t> h1(static_cast<size_t>(n)), h2(static_cast<size_t>(n));
      ref.vec.fp32_to_fp16_row(a.data(), h1.data(), n);
      simd.vec.fp32_to_fp16_row(a.data(), h2.data(), n);
      ASSERT_EQ(h1, h2) << n;
      std::vector<float> f1(static_cast<size_t>(n)), f2(static_cast<size_t>(n));
      ref.vec.fp16_to_fp32_row(h1.data(), f1.data(), n);
      simd.vec.fp16_to_fp32_row(h1.data(), f2.data(), n);
      ASSERT_EQ(f1, f2) << n;
      double sabs = 0;
      for (int64_t i = 0; i < n; ++i) sabs += std::fabs(a[i] * b[i]);
      EXPECT_NEAR(ref.vec.dot_f32(a.data(), b.data(), n), simd.vec.dot_f32(a.data(), b.data(), n), 1e-5 * sabs);
      EXPECT_NEAR(ref.vec.dot_f16_f32(h1.data(), b.data(), n), simd.vec.dot_f16_f32(h1.data(), b.data(), n),
                  1e-5 * sabs);
      std::vector<float> y1(b), y2(b);
      ref.vec.axpy_f16_f32(0.37f, h1.data(), y1.data(), n);
      simd.vec.axpy_f16_f32(0.37f, h1.data(), y2.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(y1[i], y2[i], 1e-6 * (std::fabs(y1[i]) + 1)) << i;
    }
    // The F16C conversion must round exactly like the scalar one on every kind of input.
    std::mt19937 rng(5);
    std::uniform_int_distribution<uint32_t> bits;
    std::vector<float> f(1 << 16);
    for (float& v : f) v = std::bit_cast<float>(bits(rng));
    f[0] = 65520.0f, f[1] = 0x1p-25f, f[2] = 0x3p-25f, f[3] = -0.0f;
    std::vector<uint16_t> h1(f.size()), h2(f.size());
    ref.vec.fp32_to_fp16_row(f.data(), h1.data(), static_cast<int64_t>(f.size()));
    simd.vec.fp32_to_fp16_row(f.data(), h2.data(), static_cast<int64_t>(f.size()));
    for (size_t i = 0; i < f.size(); ++i) {
      if (std::isnan(f[i])) {
        ASSERT_EQ(h2[i] & 0x7C00, 0x7C00);
        ASSERT_NE(h2[i] & 0x3FF, 0);
      } else {
        ASSERT_EQ(h1[i], h2[i]) << f[i];
      }
    }
  }
}

TEST(Levels, SwigluMatchesScalar) {
  const LevelTable& ref = detail::scalar_table();
  for (CpuLevel l : simd_levels()) {
    const LevelTable& simd = table_of(l);
    for (int64_t n : {1, 7, 16, 33, 100, 1000}) {
      auto g = test::random_floats(static_cast<size_t>(n), 3);
      auto u = test::random_floats(static_cast<size_t>(n), 4);
      for (float& v : g) v *= 12.0f;  // well into both tails of the sigmoid
      if (n >= 7) g[0] = 0.0f, g[1] = -100.0f, g[2] = 100.0f, g[3] = -87.0f, g[4] = 88.0f, g[5] = -1e30f, g[6] = 1e30f;
      std::vector<float> r1(g), r2(g);
      ref.vec.swiglu(r1.data(), u.data(), n);
      simd.vec.swiglu(r2.data(), u.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_TRUE(std::isfinite(r2[i])) << cpu_level_name(l) << " g=" << g[i];
        ASSERT_NEAR(r1[i], r2[i], 1e-6f * (std::fabs(r1[i]) + 1e-6f)) << cpu_level_name(l) << " g=" << g[i];
      }
      // Elementwise: a value is the same wherever it sits (batch invariance).
      if (n > 1) {
        std::vector<float> shifted(g.begin() + 1, g.end());
        simd.vec.swiglu(shifted.data(), u.data() + 1, n - 1);
        for (int64_t i = 1; i < n; ++i) ASSERT_EQ(std::bit_cast<uint32_t>(shifted[i - 1]), std::bit_cast<uint32_t>(r2[i]));
      }
    }
  }
}

TEST(Levels, RmsnormMatchesScalar) {
  const LevelTable& ref = detail::scalar_table();
  for (CpuLevel l : simd_levels()) {
    const LevelTable& simd = table_of(l);
    for (int64_t n : {1, 7, 8, 16, 31, 33, 64, 100, 2048, 5632}) {
      auto x = test::random_floats(static_cast<size_t>(n), 11);
      auto w = test::random_floats(static_cast<size_t>(n), 12);
      if (n >= 3) x[0] = 300.0f, x[1] = -1e-20f, x[2] = 0.0f;  // an outlier, a tiny and a zero element
      std::vector<float> r1(static_cast<size_t>(n)), r2(static_cast<size_t>(n));
      ref.vec.rmsnorm(r1.data(), x.data(), w.data(), n, 1e-5f);
      simd.vec.rmsnorm(r2.data(), x.data(), w.data(), n, 1e-5f);
      double ss = 0;
      for (float v : x) ss += static_cast<double>(v) * v;
      const double inv = 1.0 / std::sqrt(ss / static_cast<double>(n) + 1e-5);
      for (int64_t i = 0; i < n; ++i) {
        const size_t k = static_cast<size_t>(i);
        // Against the scalar level (the same formula, sums in another order) and against the definition.
        ASSERT_NEAR(r1[k], r2[k], 2e-7f * std::fabs(r1[k]) + 1e-30f) << cpu_level_name(l) << " n=" << n << " i=" << i;
        ASSERT_NEAR(r2[k], x[k] * inv * w[k], 1e-6 * std::fabs(x[k] * inv * w[k]) + 1e-30) << cpu_level_name(l);
      }
      // In place (out aliasing x) gives the same result.
      std::vector<float> in_place(x);
      simd.vec.rmsnorm(in_place.data(), in_place.data(), w.data(), n, 1e-5f);
      for (size_t k = 0; k < x.size(); ++k) ASSERT_EQ(std::bit_cast<uint32_t>(in_place[k]), std::bit_cast<uint32_t>(r2[k]));
    }
    // All zeros: the output is zero, not NaN (eps keeps the denominator positive).
    std::vector<float> z(40, 0.0f), w(40, 1.0f), out(40, 1.0f);
    simd.vec.rmsnorm(out.data(), z.data(), w.data(), 40, 1e-6f);
    for (float v : out) ASSERT_EQ(v, 0.0f) << cpu_level_name(l);
  }
}

// PARALLAMA_CPU is read once at first use; check it in a child process.
std::string run_self_with_env(const std::string& env) {
  const std::string cmd = env + " /proc/" + std::to_string(getpid()) +
                          "/exe --gtest_filter=Levels.ReportsWhatRuns 2>&1; echo \"exit=$?\"";
  std::string out;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof(buf), f) != nullptr) out += buf;
    pclose(f);
  }
  return out;
}

TEST(Levels, EnvVarSelectsAndValidates) {
  const std::string bad = run_self_with_env("PARALLAMA_CPU=avx9000");
  EXPECT_NE(bad.find("unknown CPU level"), std::string::npos) << bad;
  EXPECT_EQ(bad.find("exit=0"), std::string::npos) << bad;
  const std::string scalar = run_self_with_env("PARALLAMA_CPU=scalar");
  EXPECT_NE(scalar.find("active: scalar"), std::string::npos) << scalar;
  if (cpu_level_supported() == CpuLevel::Scalar) {
    const std::string too_high = run_self_with_env("PARALLAMA_CPU=avx512");
    EXPECT_NE(too_high.find("supports at most"), std::string::npos) << too_high;
  }
}

TEST(Levels, ForcingLevelsInProcess) {
  test::LevelGuard guard;
  for (CpuLevel l : supported_levels()) {
    detail::set_level_for_testing(l);
    EXPECT_EQ(cpu_level(), l);
  }
  EXPECT_THROW(detail::parse_level("avx9000"), Error);
  EXPECT_EQ(detail::parse_level("AVX2"), CpuLevel::Avx2);
}

}  // namespace
}  // namespace pl::kernels
