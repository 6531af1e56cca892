// CPU feature detection, the choice of kernel level, and the public entry
// points that route through the active level's table.
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <mutex>
#include <string>

#include "core/env.h"
#include "core/error.h"
#include "kernels/fp16.h"
#include "kernels/kernels_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace pl::kernels {
namespace detail {
namespace {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool os_avx = false, os_avx512 = false;  // the OS saves the ymm / zmm+mask state (XCR0)
};

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  f.fma = c & (1u << 12);
  f.f16c = c & (1u << 29);
  const bool osxsave = c & (1u << 27), avx = c & (1u << 28);
  if (osxsave && avx) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    f.os_avx = (lo & 0x6) == 0x6;
    f.os_avx512 = (lo & 0xE6) == 0xE6;
  }
  if (__get_cpuid_max(0, nullptr) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = b & (1u << 5);
    f.avx512f = b & (1u << 16);
    f.avx512dq = b & (1u << 17);
    f.avx512bw = b & (1u << 30);
    f.avx512vl = b & (1u << 31);
    f.avx512vnni = c & (1u << 11);
  }
#endif
  return f;
}

std::atomic<const LevelTable*> g_active{nullptr};
std::once_flag g_init_once;

const LevelTable* table_for(CpuLevel level) {
  switch (level) {
    case CpuLevel::Scalar: return &scalar_table();
    case CpuLevel::Avx2: return avx2_table();
    case CpuLevel::Avx512: return avx512_table();
  }
  return nullptr;
}

void init_from_env() {
  CpuLevel level = cpu_level_supported();
  if (auto env = env_var("PARALLAMA_CPU")) {
    CpuLevel want = parse_level(env->c_str());
    if (static_cast<int>(want) > static_cast<int>(level))
      fail("PARALLAMA_CPU={}: this CPU supports at most {}", *env, cpu_level_name(level));
    level = want;
  }
  g_active.store(table_for(level), std::memory_order_release);
}

}  // namespace

CpuLevel parse_level(const char* name) {
  std::string s(name);
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (s == "scalar") return CpuLevel::Scalar;
  if (s == "avx2") return CpuLevel::Avx2;
  if (s == "avx512") return CpuLevel::Avx512;
  fail("PARALLAMA_CPU={}: unknown CPU level (expected scalar, avx2 or avx512)", name);
}

const LevelTable& active() {
  const LevelTable* t = g_active.load(std::memory_order_acquire);
  if (t != nullptr) [[likely]]
    return *t;
  // call_once rethrows a bad PARALLAMA_CPU to every caller until it is fixed.
  std::call_once(g_init_once, init_from_env);
  return *g_active.load(std::memory_order_acquire);
}

void set_level_for_testing(CpuLevel level) {
  if (static_cast<int>(level) > static_cast<int>(cpu_level_supported()))
    fail("CPU level {} is not supported by this CPU", cpu_level_name(level));
  const LevelTable* t = table_for(level);
  if (t == nullptr) fail("CPU level {} is not built into this binary", cpu_level_name(level));
  g_active.store(t, std::memory_order_release);
}

size_t act_row_bytes(ActFormat f, int64_t n_cols) {
  switch (f) {
    case ActFormat::F32: return static_cast<size_t>(n_cols) * sizeof(float);
    case ActFormat::Q8x32: return static_cast<size_t>(n_cols / kQK) * sizeof(ActQ8x32);
    case ActFormat::Q8x256: return static_cast<size_t>(n_cols / kQKK) * sizeof(ActQ8x256);
  }
  return 0;
}

}  // namespace detail

CpuLevel cpu_level_supported() {
  static const CpuLevel level = [] {
    detail::CpuFeatures f = detail::detect();
    const bool avx2 = f.os_avx && f.avx2 && f.fma && f.f16c;
    const bool avx512 = avx2 && f.os_avx512 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq &&
                        f.avx512vnni;
    // The SIMD tables are only touched once the CPU is known to run them:
    // even their static initialisation may use the wider registers.
    if (avx512) return CpuLevel::Avx512;
    if (avx2) return CpuLevel::Avx2;
    return CpuLevel::Scalar;
  }();
  return level;
}

CpuLevel cpu_level() { return detail::active().level; }
std::string_view cpu_level_name(CpuLevel level) {
  switch (level) {
    case CpuLevel::Scalar: return "scalar";
    case CpuLevel::Avx2: return "avx2";
    case CpuLevel::Avx512: return "avx512";
  }
  return "?";
}
std::string_view cpu_level_name() { return cpu_level_name(cpu_level()); }

bool is_supported(DType t) { return detail::scalar_table().traits(t) != nullptr; }
bool can_quantize(DType t) { return is_supported(t) || t == DType::Q8_1 || t == DType::Q8_K; }

float fp16_to_fp32(uint16_t h) { return half_to_float(h); }
uint16_t fp32_to_fp16(float f) { return float_to_half(f); }
float bf16_to_fp32(uint16_t h) { return bf16_to_float(h); }
uint16_t fp32_to_bf16(float f) { return float_to_bf16(f); }

namespace {
void check_row(DType t, int64_t n, const char* what) {
  if (!can_quantize(t)) fail("{}: type {} is not supported", what, dtype_name(t));
  const int64_t bs = detail::block_elems(t);
  if (n < 0 || n % bs != 0) fail("{}: {} elements is not a multiple of the {} block size {}", what, n, dtype_name(t), bs);
}
}  // namespace

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  check_row(t, n, "dequantize_row");
  if (const detail::TypeTraits* tr = detail::active().traits(t)) return tr->to_float(src, dst, n);
  detail::dequantize_row_ref(t, src, dst, n);
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  check_row(t, n, "quantize_row");
  detail::quantize_row_ref(t, src, dst, n);
}

void fp16_to_fp32_row(const uint16_t* src, float* dst, int64_t n) { detail::active().vec.fp16_to_fp32_row(src, dst, n); }
void fp32_to_fp16_row(const float* src, uint16_t* dst, int64_t n) { detail::active().vec.fp32_to_fp16_row(src, dst, n); }
float dot_f32(const float* a, const float* b, int64_t n) { return detail::active().vec.dot_f32(a, b, n); }
float dot_f16_f32(const uint16_t* a, const float* b, int64_t n) { return detail::active().vec.dot_f16_f32(a, b, n); }
void axpy_f16_f32(float a, const uint16_t* x, float* y, int64_t n) { detail::active().vec.axpy_f16_f32(a, x, y, n); }
void swiglu(float* gate, const float* up, int64_t n) { detail::active().vec.swiglu(gate, up, n); }
void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps) {
  detail::active().vec.rmsnorm(out, x, w, n, eps);
}

}  // namespace pl::kernels
