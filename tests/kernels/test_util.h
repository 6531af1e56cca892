// Helpers shared by the kernel tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/error.h"
#include "gguf/dtype.h"
#include "kernels/kernels.h"
#include "kernels/kernels_internal.h"

namespace pl::kernels::test {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Random rows quantized to type t: returns the raw bytes [n_rows, row_bytes].
inline std::vector<uint8_t> random_weights(DType t, int64_t n_rows, int64_t n_cols, uint32_t seed) {
  std::vector<float> f = random_floats(static_cast<size_t>(n_rows * n_cols), seed, 0.05f);
  const size_t rb = row_bytes(t, static_cast<size_t>(n_cols));
  std::vector<uint8_t> w(rb * static_cast<size_t>(n_rows));
  for (int64_t r = 0; r < n_rows; ++r) quantize_row(t, f.data() + r * n_cols, w.data() + r * rb, n_cols);
  return w;
}

inline double rms(const float* x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return std::sqrt(s / static_cast<double>(n));
}

// The levels this CPU can run (always includes Scalar).
inline const detail::LevelTable* table_ptr(CpuLevel l) {
  switch (l) {
    case CpuLevel::Avx2: return detail::avx2_table();
    case CpuLevel::Avx512: return detail::avx512_table();
    default: return &detail::scalar_table();
  }
}
inline const detail::LevelTable& table_of(CpuLevel l) { return *table_ptr(l); }

inline std::vector<CpuLevel> supported_levels() {
  std::vector<CpuLevel> v;
  for (int l = 0; l <= static_cast<int>(cpu_level_supported()); ++l)
    if (table_ptr(static_cast<CpuLevel>(l)) != nullptr) v.push_back(static_cast<CpuLevel>(l));
  return v;
}

// Restores the level a test switched to.
struct LevelGuard {
  CpuLevel saved = cpu_level();
  ~LevelGuard() { detail::set_level_for_testing(saved); }
};

inline const std::vector<DType>& weight_types() {
  static const std::vector<DType> v = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0,
                                       DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                                       DType::Q4_K, DType::Q5_K, DType::Q6_K};
  return v;
}

}  // namespace pl::kernels::test
