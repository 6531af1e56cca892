// matmul against a naive double-precision product of the dequantized weights
// and the fp32 activations, at every level this CPU supports.
//
// Bound per output y[t][r]: quantized weight types round activations to 8 bits
// with step s_b = amax_b / 127 per block b (32 or 256 elements). The rounding
// error of element k is uniform in +-s_b/2, so the output error has standard
// deviation sigma = sqrt(sum_k w_k^2 s_k^2 / 12); we allow 6 sigma plus
// 2e-5 * sum_k |w_k x_k| for float summation. Float weight types get only the
// summation term.
#include <gtest/gtest.h>

#include <cstring>

#include "test_util.h"

namespace pl::kernels {
namespace {

struct Case {
  DType type;
  int64_t n_rows, n_cols, n_tok;
};

void check_matmul(const Case& c, ThreadPool& pool) {
  auto w = test::random_weights(c.type, c.n_rows, c.n_cols, 17);
  const size_t rb = row_bytes(c.type, static_cast<size_t>(c.n_cols));
  std::vector<float> wf(static_cast<size_t>(c.n_rows * c.n_cols));
  for (int64_t r = 0; r < c.n_rows; ++r) dequantize_row(c.type, w.data() + r * rb, wf.data() + r * c.n_cols, c.n_cols);
  auto x = test::random_floats(static_cast<size_t>(c.n_tok * c.n_cols), 23);
  // Make one token's activations spiky, as real hidden states are.
  for (int64_t k = 0; k < c.n_cols; k += 61) x[static_cast<size_t>(k)] *= 20.0f;
  std::vector<float> y(static_cast<size_t>(c.n_tok * c.n_rows));
  matmul(WeightView{c.type, c.n_rows, c.n_cols, w.data()}, x.data(), c.n_cols, c.n_tok, y.data(), c.n_rows, pool);

  const detail::TypeTraits* tr = detail::scalar_table().traits(c.type);
  const int64_t act_block = tr->act == detail::ActFormat::Q8x32 ? 32 : tr->act == detail::ActFormat::Q8x256 ? 256 : 0;
  double worst = 0;
  for (int64_t t = 0; t < c.n_tok; ++t) {
    const float* xt = x.data() + t * c.n_cols;
    std::vector<double> step(static_cast<size_t>(c.n_cols), 0.0);
    if (act_block > 0) {
      for (int64_t b = 0; b < c.n_cols; b += act_block) {
        double amax = 0;
        for (int64_t k = b; k < b + act_block; ++k) amax = std::max(amax, std::fabs(static_cast<double>(xt[k])));
        for (int64_t k = b; k < b + act_block; ++k) step[static_cast<size_t>(k)] = amax / 127;
      }
    }
    for (int64_t r = 0; r < c.n_rows; ++r) {
      const float* wr = wf.data() + r * c.n_cols;
      double ref = 0, sabs = 0, var = 0;
      for (int64_t k = 0; k < c.n_cols; ++k) {
        ref += static_cast<double>(wr[k]) * xt[k];
        sabs += std::fabs(static_cast<double>(wr[k]) * xt[k]);
        var += static_cast<double>(wr[k]) * wr[k] * step[static_cast<size_t>(k)] * step[static_cast<size_t>(k)] / 12;
      }
      const double tol = 6 * std::sqrt(var) + 2e-5 * sabs + 1e-6;
      const double err = std::fabs(y[static_cast<size_t>(t * c.n_rows + r)] - ref);
      worst = std::max(worst, err / tol);
      ASSERT_LE(err, tol) << dtype_name(c.type) << " level " << cpu_level_name() << " t=" << t << " r=" << r
                          << " ref=" << ref;
    }
  }
  ::testing::Test::RecordProperty("worst_err_over_tol", std::to_string(worst));
}

TEST(Matmul, AgainstDoubleReferenceAllLevels) {
  test::LevelGuard guard;
  ThreadPool pool(2);
  for (CpuLevel l : test::supported_levels()) {
    detail::set_level_for_testing(l);
    for (DType t : test::weight_types()) {
      for (Case c : {Case{t, 37, 512, 1}, Case{t, 64, 256, 3}, Case{t, 48, 1024, 17}, Case{t, 33, 512, 64}}) {
        SCOPED_TRACE(std::string(cpu_level_name(l)) + " " + std::string(dtype_name(t)));
        check_matmul(c, pool);
      }
    }
  }
}

TEST(Matmul, IdenticalForOneAndTwoThreads) {
  ThreadPool one(1), two(2);
  for (DType t : test::weight_types()) {
    for (int64_t n_tok : {1, 5, 70}) {
      const int64_t n_rows = 300, n_cols = 512;
      auto w = test::random_weights(t, n_rows, n_cols, 3);
      auto x = test::random_floats(static_cast<size_t>(n_tok * n_cols), 4);
      std::vector<float> y1(static_cast<size_t>(n_tok * n_rows)), y2(y1.size());
      const WeightView wv{t, n_rows, n_cols, w.data()};
      matmul(wv, x.data(), n_cols, n_tok, y1.data(), n_rows, one);
      matmul(wv, x.data(), n_cols, n_tok, y2.data(), n_rows, two);
      ASSERT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)))
          << dtype_name(t) << " n_tok=" << n_tok;
    }
  }
}

// A token's outputs are the same bits whatever else is in the batch: a
// sequence's logits (and so its seeded samples) must not depend on its
// neighbours or on how its prompt was chunked. Every type, packed where the
// model packs it, at every level, for batches on both sides of every
// token-count threshold the kernels have.
TEST(Matmul, EachTokenIndependentOfTheBatch) {
  test::LevelGuard guard;
  ThreadPool pool(2);
  const int64_t n_rows = 70, n_cols = 512, n_tok = 100;
  for (CpuLevel l : test::supported_levels()) {
    detail::set_level_for_testing(l);
    for (DType t : test::weight_types()) {
      auto w = test::random_weights(t, n_rows, n_cols, 5);
      auto packed = has_packed_kernel(t) ? pack_weights(WeightView{t, n_rows, n_cols, w.data()}) : nullptr;
      const WeightView wv{t, n_rows, n_cols, w.data(), packed.get()};
      auto x = test::random_floats(static_cast<size_t>(n_tok * n_cols), 6);
      std::vector<float> all(static_cast<size_t>(n_tok * n_rows));
      matmul(wv, x.data(), n_cols, n_tok, all.data(), n_rows, pool);
      for (int64_t batch : {1, 2, 7, 12, 16, 17, 31, 32, 33, 64}) {
        const int64_t t0 = 3;  // tokens [t0, t0 + batch) of the same activations
        std::vector<float> y(static_cast<size_t>(batch * n_rows));
        matmul(wv, x.data() + t0 * n_cols, n_cols, batch, y.data(), n_rows, pool);
        ASSERT_EQ(0, std::memcmp(y.data(), all.data() + t0 * n_rows, y.size() * sizeof(float)))
            << cpu_level_name(l) << " " << dtype_name(t) << " batch " << batch << " of " << n_tok;
      }
    }
  }
}

TEST(Matmul, RejectsBadInput) {
  ThreadPool pool(1);
  std::vector<uint8_t> w(1024);
  float x[64] = {}, y[64] = {};
  EXPECT_THROW(matmul(WeightView{DType::Q4_0, 2, 48, w.data()}, x, 48, 1, y, 2, pool), Error);   // 48 % 32
  EXPECT_THROW(matmul(WeightView{DType::Q2_K, 1, 256, w.data()}, x, 256, 1, y, 1, pool), Error);  // unsupported
  EXPECT_THROW(matmul(WeightView{DType::F32, 2, 16, w.data()}, x, 8, 1, y, 2, pool), Error);      // ldx < n_cols
  matmul(WeightView{DType::F32, 2, 16, w.data()}, x, 16, 0, y, 2, pool);                          // n_tok 0: no-op
}

}  // namespace
}  // namespace pl::kernels
