// Scalar reference kernels: the dot products every SIMD level is tested
// against, and the scalar level's traits table.
//
// The integer part of each block dot product is exact; the float part follows
// one fixed order (per block: int sum * (weight scale * activation scale), plus
// the min term, accumulated block by block) which the SIMD kernels mirror, so
// levels differ only by float rounding (FMA vs mul+add, and lane order).
#include <array>
#include <cmath>
#include <cstring>

#include "kernels/fp16.h"
#include "kernels/kernels_internal.h"

namespace pl::kernels::detail {
namespace {

inline int nibble(const uint8_t* qs, int i) { return i < 16 ? qs[i] & 15 : qs[i - 16] >> 4; }
inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

float dot_f32_w(int64_t n, const void* w, const void* x) {
  auto* a = static_cast<const float*>(w);
  auto* b = static_cast<const float*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}
float dot_f16_w(int64_t n, const void* w, const void* x) {
  auto* a = static_cast<const uint16_t*>(w);
  auto* b = static_cast<const float*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += half_to_float(a[i]) * b[i];
  return s;
}
float dot_bf16_w(int64_t n, const void* w, const void* x) {
  auto* a = static_cast<const uint16_t*>(w);
  auto* b = static_cast<const float*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += bf16_to_float(a[i]) * b[i];
  return s;
}

float dot_q4_0(int64_t n, const void* w, const void* x) {
  auto* b = static_cast<const BlockQ4_0*>(w);
  auto* a = static_cast<const ActQ8x32*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int isum = 0;
    for (int j = 0; j < kQK; ++j) isum += (nibble(b[i].qs, j) - 8) * a[i].qs[j];
    s += static_cast<float>(isum) * (half_to_float(b[i].d) * a[i].d);
  }
  return s;
}
float dot_q4_1(int64_t n, const void* w, const void* x) {
  auto* b = static_cast<const BlockQ4_1*>(w);
  auto* a = static_cast<const ActQ8x32*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int isum = 0;
    for (int j = 0; j < kQK; ++j) isum += nibble(b[i].qs, j) * a[i].qs[j];
    s += static_cast<float>(isum) * (half_to_float(b[i].d) * a[i].d);
    s += half_to_float(b[i].m) * a[i].dsum;
  }
  return s;
}
float dot_q5_0(int64_t n, const void* w, const void* x) {
  auto* b = static_cast<const BlockQ5_0*>(w);
  auto* a = static_cast<const ActQ8x32*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    const uint32_t qh = load_u32(b[i].qh);
    int isum = 0;
    for (int j = 0; j < kQK; ++j) {
      const int q = nibble(b[i].qs, j) | static_cast<int>(((qh >> j) & 1) << 4);
      isum += (q - 16) * a[i].qs[j];
    }
    s += static_cast<float>(isum) * (half_to_float(b[i].d) * a[i].d);
  }
  return s;
}
float dot_q5_1(int64_t n, const void* w, const void* x) {
  auto* b = static_cast<const BlockQ5_1*>(w);
  auto* a = static_cast<const ActQ8x32*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    const uint32_t qh = load_u32(b[i].qh);
    int isum = 0;
    for (int j = 0; j < kQK; ++j) {
      const int q = nibble(b[i].qs, j) | static_cast<int>(((qh >> j) & 1) << 4);
      isum += q * a[i].qs[j];
    }
    s += static_cast<float>(isum) * (half_to_float(b[i].d) * a[i].d);
    s += half_to_float(b[i].m) * a[i].dsum;
  }
  return s;
}
float dot_q8_0(int64_t n, const void* w, const void* x) {
  auto* b = static_cast<const BlockQ8_0*>(w);
  auto* a = static_cast<const ActQ8x32*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int isum = 0;
    for (int j = 0; j < kQK; ++j) isum += b[i].qs[j] * a[i].qs[j];
    s += static_cast<float>(isum) * (half_to_float(b[i].d) * a[i].d);
  }
  return s;
}

// Q4_K/Q5_K: per super-block, acc = sum_j isum_j * (d * sc_j) - (dmin * m_j) * sum32_j,
// then s += act.d * acc.
template <bool kFive>
float dot_q45_k(int64_t n, const void* w, const void* x) {
  auto* a = static_cast<const ActQ8x256*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const uint8_t* scales;
    const uint8_t* qs;
    const uint8_t* qh = nullptr;
    float d, dmin;
    if constexpr (kFive) {
      auto& b = static_cast<const BlockQ5_K*>(w)[i];
      scales = b.scales, qs = b.qs, qh = b.qh, d = half_to_float(b.d), dmin = half_to_float(b.dmin);
    } else {
      auto& b = static_cast<const BlockQ4_K*>(w)[i];
      scales = b.scales, qs = b.qs, d = half_to_float(b.d), dmin = half_to_float(b.dmin);
    }
    float acc = 0.0f;
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      kquant_scale_min(scales, j, sc, m);
      int isum = 0;
      for (int l = 0; l < 32; ++l) {
        int q = (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 15;
        if constexpr (kFive) q |= ((qh[l] >> j) & 1) << 4;
        isum += q * a[i].qs[32 * j + l];
      }
      acc += static_cast<float>(isum) * (d * static_cast<float>(sc));
      acc += -(dmin * static_cast<float>(m)) * a[i].sum32[j];
    }
    s += a[i].d * acc;
  }
  return s;
}

float dot_q6_k(int64_t n, const void* w, const void* x) {
  auto* b = static_cast<const BlockQ6_K*>(w);
  auto* a = static_cast<const ActQ8x256*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int q[kQKK];
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = b[i].ql + 64 * h;
      const uint8_t* qh = b[i].qh + 32 * h;
      int* qq = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        qq[l] = (ql[l] & 15) | (((qh[l] >> 0) & 3) << 4);
        qq[l + 32] = (ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4);
        qq[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
        qq[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
      }
    }
    const float d = half_to_float(b[i].d);
    float acc = 0.0f;
    for (int g = 0; g < 16; ++g) {
      int isum = a[i].bias16[g];  // -32 * sum(x) folds the level offset in
      for (int e = 0; e < 16; ++e) isum += q[16 * g + e] * a[i].qs[16 * g + e];
      acc += static_cast<float>(isum) * (d * static_cast<float>(b[i].scales[g]));
    }
    s += a[i].d * acc;
  }
  return s;
}

void gemm_scalar(const GemmArgs& a, int64_t r0, int64_t r1, VecDotFn dot) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t t = 0; t < a.n_tok; ++t)
      a.y[t * a.ldy + r] = dot(a.n_cols, a.w + static_cast<size_t>(r) * a.w_row_bytes,
                               a.xa + static_cast<size_t>(t) * a.xa_row_bytes);
}

template <VecDotFn kDot>
void gemm_with(const GemmArgs& a, int64_t r0, int64_t r1, void*) {
  gemm_scalar(a, r0, r1, kDot);
}

template <DType kT>
void to_float_ref(const void* src, float* dst, int64_t n) {
  dequantize_row_ref(kT, src, dst, n);
}
template <DType kT>
void from_float_ref(const float* src, void* dst, int64_t n) {
  quantize_row_ref(kT, src, dst, n);
}

template <DType kT, ActFormat kAct, VecDotFn kDot>
constexpr TypeTraits make_traits() {
  TypeTraits t;
  t.type = kT;
  t.act = kAct;
  t.to_float = &to_float_ref<kT>;
  t.from_float = &from_float_ref<kT>;
  t.vec_dot = kDot;
  t.gemm = &gemm_with<kDot>;
  return t;
}

constexpr std::array kScalarTraits = {
    make_traits<DType::F32, ActFormat::F32, dot_f32_w>(),
    make_traits<DType::F16, ActFormat::F32, dot_f16_w>(),
    make_traits<DType::BF16, ActFormat::F32, dot_bf16_w>(),
    make_traits<DType::Q4_0, ActFormat::Q8x32, dot_q4_0>(),
    make_traits<DType::Q4_1, ActFormat::Q8x32, dot_q4_1>(),
    make_traits<DType::Q5_0, ActFormat::Q8x32, dot_q5_0>(),
    make_traits<DType::Q5_1, ActFormat::Q8x32, dot_q5_1>(),
    make_traits<DType::Q8_0, ActFormat::Q8x32, dot_q8_0>(),
    make_traits<DType::Q4_K, ActFormat::Q8x256, dot_q45_k<false>>(),
    make_traits<DType::Q5_K, ActFormat::Q8x256, dot_q45_k<true>>(),
    make_traits<DType::Q6_K, ActFormat::Q8x256, dot_q6_k>(),
};

const TypeTraits* scalar_traits(DType t) {
  for (const TypeTraits& tr : kScalarTraits)
    if (tr.type == t) return &tr;
  return nullptr;
}

void fp16_to_fp32_row_ref(const uint16_t* s, float* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = half_to_float(s[i]);
}
void fp32_to_fp16_row_ref(const float* s, uint16_t* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = float_to_half(s[i]);
}
float dot_f32_ref(const float* a, const float* b, int64_t n) { return dot_f32_w(n, a, b); }
float dot_f16_f32_ref(const uint16_t* a, const float* b, int64_t n) { return dot_f16_w(n, a, b); }
void axpy_f16_f32_ref(float a, const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * half_to_float(x[i]);
}

void swiglu_ref(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void rmsnorm_ref(float* out, const float* x, const float* w, int64_t n, float eps) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * w[i];
}

}  // namespace

const LevelTable& scalar_table() {
  static const LevelTable table{
      CpuLevel::Scalar,
      &scalar_traits,
      VecTraits{&fp16_to_fp32_row_ref, &fp32_to_fp16_row_ref, &dot_f32_ref, &dot_f16_f32_ref,
                &axpy_f16_f32_ref, &quantize_act_ref, &swiglu_ref, &rmsnorm_ref},
  };
  return table;
}

}  // namespace pl::kernels::detail
