// Packed (row-interleaved) weights: the layout round-trips to the file's
// blocks byte for byte, and matmul over packed weights equals the scalar
// reference on the original layout within float-summation tolerance (integer
// sums are exact, so the bound is 2e-5 * sum_k |w_k * x_k| per output, as in
// test_levels.cpp), for odd shapes, every token count the kernels tile
// differently, and one or two threads.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "test_util.h"

namespace pl::kernels {
namespace {

const std::vector<DType>& packed_types() {
  static const std::vector<DType> v = {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K};
  return v;
}

// Levels with a packed kernel for t.
std::vector<CpuLevel> packed_levels(DType t) {
  std::vector<CpuLevel> v;
  for (CpuLevel l : test::supported_levels()) {
    const detail::TypeTraits* tr = test::table_of(l).traits(t);
    if (tr != nullptr && tr->gemm_packed != nullptr) v.push_back(l);
  }
  return v;
}

double abs_dot(const float* w, const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::fabs(static_cast<double>(w[i]) * x[i]);
  return s;
}

TEST(Packed, RoundTripsToFileBlocks) {
  test::LevelGuard guard;
  int n_checked = 0;
  for (DType t : packed_types()) {
    for (CpuLevel l : packed_levels(t)) {
      detail::set_level_for_testing(l);
      const int64_t bs = detail::block_elems(t);
      for (int64_t n_cols : {bs, 3 * bs, 8 * bs}) {
        for (int64_t n_rows : {1, 15, 16, 17, 33, 71}) {
          auto w = test::random_weights(t, n_rows, n_cols, 5 + static_cast<uint32_t>(n_rows));
          auto p = pack_weights(WeightView{t, n_rows, n_cols, w.data()});
          ASSERT_NE(p, nullptr) << dtype_name(t);
          EXPECT_EQ(p->n_groups, (n_rows + 15) / 16);
          std::vector<uint8_t> back(w.size(), 0xAB);
          detail::unpack_groups(*p, back.data());
          ASSERT_EQ(0, std::memcmp(w.data(), back.data(), w.size()))
              << dtype_name(t) << " rows=" << n_rows << " cols=" << n_cols;
          ++n_checked;
        }
      }
    }
  }
  if (n_checked == 0) GTEST_SKIP() << "no level with packed kernels on this CPU";
}

// Matrices packed into one arena hold the same bytes as packed alone, back to
// back without overlap, and stay valid after the arena object is gone (the
// packed matrices share its memory).
TEST(Packed, ArenaHoldsMatricesAsPackedAlone) {
  test::LevelGuard guard;
  int n_checked = 0;
  for (CpuLevel l : test::supported_levels()) {
    detail::set_level_for_testing(l);
    std::vector<std::vector<uint8_t>> data;
    std::vector<WeightView> views;
    size_t total = 0;
    for (DType t : packed_types()) {
      if (!has_packed_kernel(t)) continue;
      const int64_t bs = detail::block_elems(t);
      for (int64_t n_rows : {17, 48}) {
        data.push_back(test::random_weights(t, n_rows, 2 * bs, 11 + static_cast<uint32_t>(n_rows)));
        views.push_back(WeightView{t, n_rows, 2 * bs, data.back().data()});
        total += packed_bytes(views.back());
      }
    }
    if (views.empty()) continue;
    std::vector<std::unique_ptr<PackedWeights>> in_arena;
    {
      PackArena arena(total);
      for (const WeightView& v : views) in_arena.push_back(pack_weights(v, 1, &arena));
      EXPECT_EQ(arena.used(), total);
    }
    for (size_t i = 0; i < views.size(); ++i) {
      auto alone = pack_weights(views[i]);
      ASSERT_NE(in_arena[i], nullptr);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(in_arena[i]->data) % 64, 0u);
      ASSERT_EQ(in_arena[i]->n_bytes(), alone->n_bytes());
      EXPECT_EQ(0, std::memcmp(in_arena[i]->data, alone->data, alone->n_bytes())) << dtype_name(views[i].type);
      if (i > 0) {
        EXPECT_GE(in_arena[i]->data, in_arena[i - 1]->data + in_arena[i - 1]->n_bytes());
      }
    }
    ++n_checked;
  }
  if (n_checked == 0) GTEST_SKIP() << "no level with packed kernels on this CPU";
}

TEST(PackedDeathTest, ArenaRefusesMoreThanItsCapacity) {
  test::LevelGuard guard;
  const std::vector<CpuLevel> levels = packed_levels(DType::Q8_0);
  if (levels.empty()) GTEST_SKIP() << "no level with packed kernels on this CPU";
  detail::set_level_for_testing(levels.back());
  auto w = test::random_weights(DType::Q8_0, 32, 64, 3);
  const WeightView v{DType::Q8_0, 32, 64, w.data()};
  EXPECT_DEATH(
      {
        PackArena arena(packed_bytes(v) - 64);
        (void)pack_weights(v, 1, &arena);
      },
      "pack arena");
}

TEST(Packed, NotPackedWithoutKernel) {
  test::LevelGuard guard;
  detail::set_level_for_testing(CpuLevel::Scalar);
  auto w = test::random_weights(DType::Q4_0, 16, 64, 1);
  EXPECT_EQ(pack_weights(WeightView{DType::Q4_0, 16, 64, w.data()}), nullptr);
  EXPECT_FALSE(has_packed_kernel(DType::Q4_0));
  EXPECT_FALSE(has_packed_kernel(DType::F16));
}

TEST(Packed, MatmulMatchesScalarOnFileLayout) {
  test::LevelGuard guard;
  ThreadPool pool(2);
  int n_checked = 0;
  for (DType t : packed_types()) {
    const int64_t bs = detail::block_elems(t);
    for (CpuLevel l : packed_levels(t)) {
      detail::set_level_for_testing(l);
      for (int64_t n_cols : {bs, 2 * bs, 3 * bs, 4 * bs, bs == 32 ? int64_t{2048} : int64_t{2304}}) {
        for (int64_t n_rows : {1, 17, 48, 71}) {
          auto w = test::random_weights(t, n_rows, n_cols, 7 + static_cast<uint32_t>(n_rows));
          auto packed = pack_weights(WeightView{t, n_rows, n_cols, w.data()});
          ASSERT_NE(packed, nullptr);
          const WeightView plain{t, n_rows, n_cols, w.data()};
          const WeightView wv{t, n_rows, n_cols, w.data(), packed.get()};
          std::vector<float> wf(static_cast<size_t>(n_rows * n_cols));
          const size_t rb = row_bytes(t, static_cast<size_t>(n_cols));
          for (int64_t r = 0; r < n_rows; ++r) dequantize_row(t, w.data() + r * rb, wf.data() + r * n_cols, n_cols);
          for (int64_t n_tok : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 24, 64, 300}) {
            if (n_cols > 1000 && n_tok > 64 && n_rows > 17) continue;  // keep the scalar side quick
            const int64_t ldx = n_cols + 8, ldy = n_rows + 3;
            auto x = test::random_floats(static_cast<size_t>(n_tok * ldx), 1000 + static_cast<uint32_t>(n_tok));
            std::vector<float> ya(static_cast<size_t>(n_tok * ldy), -7.0f), yb(ya.size(), -7.0f);
            detail::matmul_with(detail::scalar_table(), plain, x.data(), ldx, n_tok, ya.data(), ldy, pool);
            detail::matmul_with(test::table_of(l), wv, x.data(), ldx, n_tok, yb.data(), ldy, pool);
            for (int64_t tk = 0; tk < n_tok; ++tk) {
              for (int64_t r = 0; r < ldy; ++r) {
                const size_t i = static_cast<size_t>(tk * ldy + r);
                if (r >= n_rows) {
                  ASSERT_EQ(yb[i], -7.0f) << "wrote past n_rows";
                  continue;
                }
                const double tol = 2e-5 * abs_dot(wf.data() + r * n_cols, x.data() + tk * ldx, n_cols) + 1e-6;
                ASSERT_NEAR(ya[i], yb[i], tol) << cpu_level_name(l) << " " << dtype_name(t) << " rows=" << n_rows
                                               << " cols=" << n_cols << " n_tok=" << n_tok << " t=" << tk << " r=" << r;
              }
            }
            ++n_checked;
          }
        }
      }
    }
  }
  if (n_checked == 0) GTEST_SKIP() << "no level with packed kernels on this CPU";
}

// The packed Q4_0 kernels use a pair's odd block as 16 * q with scale d / 16
// (act_bias_scale); that path must give the even block's result bit for bit.
// Rows of two identical blocks against activations of two identical halves:
// each output is exactly twice the output of one block alone.
TEST(Packed, Q4_0OddBlockPathIsExact) {
  test::LevelGuard guard;
  ThreadPool pool(2);
  const std::vector<CpuLevel> levels = packed_levels(DType::Q4_0);
  if (levels.empty()) GTEST_SKIP() << "no level with packed kernels on this CPU";
  const int64_t n_rows = 37;
  const size_t bb = row_bytes(DType::Q4_0, 32);
  const std::vector<uint8_t> one = test::random_weights(DType::Q4_0, n_rows, 32, 5);
  std::vector<uint8_t> two(2 * one.size());
  for (int64_t r = 0; r < n_rows; ++r)
    for (int h = 0; h < 2; ++h) std::memcpy(two.data() + (2 * r + h) * bb, one.data() + r * bb, bb);
  for (CpuLevel l : levels) {
    detail::set_level_for_testing(l);
    auto p1 = pack_weights(WeightView{DType::Q4_0, n_rows, 32, one.data()});
    auto p2 = pack_weights(WeightView{DType::Q4_0, n_rows, 64, two.data()});
    for (int64_t n_tok : {1, 8, 12, 40}) {
      const std::vector<float> x1 = test::random_floats(static_cast<size_t>(n_tok * 32), 9);
      std::vector<float> x2(static_cast<size_t>(n_tok * 64));
      for (int64_t t = 0; t < n_tok; ++t)
        for (int h = 0; h < 2; ++h) std::memcpy(x2.data() + t * 64 + h * 32, x1.data() + t * 32, 32 * sizeof(float));
      std::vector<float> y1(static_cast<size_t>(n_tok * n_rows)), y2(y1.size());
      matmul(WeightView{DType::Q4_0, n_rows, 32, one.data(), p1.get()}, x1.data(), 32, n_tok, y1.data(), n_rows, pool);
      matmul(WeightView{DType::Q4_0, n_rows, 64, two.data(), p2.get()}, x2.data(), 64, n_tok, y2.data(), n_rows, pool);
      for (size_t i = 0; i < y1.size(); ++i)
        ASSERT_EQ(y2[i], 2.0f * y1[i]) << cpu_level_name(l) << " n_tok=" << n_tok << " i=" << i;
    }
  }
}

// The same packed matrix under a level without a packed kernel falls back to
// the file layout, and one, two or three threads (which split the rows into
// different claims) give identical bits.
TEST(Packed, FallbackAndThreadInvariance) {
  test::LevelGuard guard;
  ThreadPool one(1), two(2), three(3);
  for (DType t : packed_types()) {
    const std::vector<CpuLevel> levels = packed_levels(t);
    if (levels.empty()) GTEST_SKIP() << "no level with packed kernels on this CPU";
    detail::set_level_for_testing(levels.back());
    const int64_t n_rows = 300, n_cols = detail::block_elems(t) == 32 ? 96 : 512;
    auto w = test::random_weights(t, n_rows, n_cols, 3);
    auto packed = pack_weights(WeightView{t, n_rows, n_cols, w.data()});
    const WeightView wv{t, n_rows, n_cols, w.data(), packed.get()};
    for (int64_t n_tok : {1, 5, 70}) {
      auto x = test::random_floats(static_cast<size_t>(n_tok * n_cols), 4);
      std::vector<float> y1(static_cast<size_t>(n_tok * n_rows)), y2(y1.size()), y3(y1.size()), ys(y1.size()),
          yr(y1.size());
      matmul(wv, x.data(), n_cols, n_tok, y1.data(), n_rows, one);
      matmul(wv, x.data(), n_cols, n_tok, y2.data(), n_rows, two);
      matmul(wv, x.data(), n_cols, n_tok, y3.data(), n_rows, three);
      ASSERT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float))) << dtype_name(t) << " n_tok=" << n_tok;
      ASSERT_EQ(0, std::memcmp(y1.data(), y3.data(), y1.size() * sizeof(float))) << dtype_name(t) << " n_tok=" << n_tok;
      // Scalar level: the packed copy is ignored, the result is the reference's.
      detail::matmul_with(detail::scalar_table(), wv, x.data(), n_cols, n_tok, ys.data(), n_rows, two);
      detail::matmul_with(detail::scalar_table(), WeightView{t, n_rows, n_cols, w.data()}, x.data(), n_cols, n_tok,
                          yr.data(), n_rows, two);
      ASSERT_EQ(0, std::memcmp(ys.data(), yr.data(), ys.size() * sizeof(float))) << dtype_name(t);
    }
  }
}

// Several matrices over one input (a layer's Q/K/V, gate/up): each output is
// bit for bit what matmul gives alone, whether the matrices share one
// activation conversion and run (same type, or types with the same
// activations) or not (mixed types, float weights), at every level.
TEST(Packed, MatmulMultiEqualsSeparateMatmuls) {
  test::LevelGuard guard;
  ThreadPool pool(2);
  const std::vector<std::vector<DType>> sets = {
      {DType::Q4_0, DType::Q4_0, DType::Q4_0}, {DType::Q8_0, DType::Q8_0}, {DType::Q4_K, DType::Q4_K, DType::Q6_K},
      {DType::Q4_0, DType::Q8_0}, {DType::Q4_K, DType::F16}, {DType::F32, DType::F16, DType::Q6_K, DType::Q4_K}};
  for (CpuLevel l : test::supported_levels()) {
    detail::set_level_for_testing(l);
    for (const std::vector<DType>& types : sets) {
      const int64_t n_cols = 512;
      const std::vector<int64_t> rows = {200, 33, 16, 5};
      std::vector<std::vector<uint8_t>> data;
      std::vector<std::unique_ptr<PackedWeights>> packs;
      std::vector<WeightView> views;
      for (size_t i = 0; i < types.size(); ++i) {
        data.push_back(test::random_weights(types[i], rows[i], n_cols, 11 + static_cast<uint32_t>(i)));
        packs.push_back(pack_weights(WeightView{types[i], rows[i], n_cols, data.back().data()}));
      }
      for (size_t i = 0; i < types.size(); ++i)
        views.push_back(WeightView{types[i], rows[i], n_cols, data[i].data(), packs[i].get()});
      for (int64_t n_tok : {1, 8, 13, 40}) {
        const int64_t ldx = n_cols + 4;
        auto x = test::random_floats(static_cast<size_t>(n_tok * ldx), 50 + static_cast<uint32_t>(n_tok));
        std::vector<std::vector<float>> ys, yr;
        std::vector<MatmulOutput> outs;
        for (size_t i = 0; i < types.size(); ++i) {
          const int64_t ldy = rows[i] + 1;
          ys.emplace_back(static_cast<size_t>(n_tok * ldy), -3.0f);
          yr.emplace_back(ys.back());
          matmul(views[i], x.data(), ldx, n_tok, yr.back().data(), ldy, pool);
        }
        for (size_t i = 0; i < types.size(); ++i) outs.push_back({&views[i], ys[i].data(), rows[i] + 1});
        matmul_multi(outs, x.data(), ldx, n_tok, pool);
        for (size_t i = 0; i < types.size(); ++i)
          ASSERT_EQ(0, std::memcmp(ys[i].data(), yr[i].data(), ys[i].size() * sizeof(float)))
              << cpu_level_name(l) << " matrix " << i << " (" << dtype_name(types[i]) << ") n_tok=" << n_tok;
      }
    }
  }
}

TEST(Packed, MatmulMultiRejectsMismatchedInputs) {
  ThreadPool pool(1);
  auto a = test::random_weights(DType::Q8_0, 4, 64, 1), b = test::random_weights(DType::Q8_0, 4, 96, 2);
  const WeightView wa{DType::Q8_0, 4, 64, a.data()}, wb{DType::Q8_0, 4, 96, b.data()};
  std::vector<float> x(96 * 2, 0.5f), ya(8), yb(8);
  const MatmulOutput outs[] = {{&wa, ya.data(), 4}, {&wb, yb.data(), 4}};
  EXPECT_THROW(matmul_multi(outs, x.data(), 96, 2, pool), Error);
  const MatmulOutput bad_ldy[] = {{&wa, ya.data(), 4}, {&wa, yb.data(), 3}};
  EXPECT_THROW(matmul_multi(bad_ldy, x.data(), 96, 2, pool), Error);
}

}  // namespace
}  // namespace pl::kernels
