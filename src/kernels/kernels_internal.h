// Internal kernel interface: the per-dtype traits table each ISA level fills
// in, and hooks for tests and benchmarks to run a given level in-process.
// Not for use outside src/kernels, tests/kernels and bench/kernels.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gguf/dtype.h"
#include "kernels/blocks.h"
#include "kernels/kernels.h"

namespace pl::kernels::detail {

// What a weight type's dot products consume on the activation side.
enum class ActFormat { F32, Q8x32, Q8x256 };

// One matmul, as the tiled kernels see it. Activations are already converted
// to the weight type's ActFormat.
struct GemmArgs {
  const uint8_t* w;     // [n_rows, w_row_bytes]
  size_t w_row_bytes;
  int64_t n_rows;
  int64_t n_cols;
  const uint8_t* xa;    // [n_tok, xa_row_bytes], activations in act format
  size_t xa_row_bytes;
  int64_t n_tok;
  float* y;             // y[t * ldy + r]
  int64_t ldy;
};

// Computes y for rows [r0, r1) and all n_tok tokens. `scratch` is a per-thread
// buffer of at least gemm_scratch_bytes(n_cols, n_tok) bytes, 64-byte aligned.
using GemmFn = void (*)(const GemmArgs& a, int64_t r0, int64_t r1, void* scratch);
// Dot of one weight row with one activation row (act format), n elements.
using VecDotFn = float (*)(int64_t n, const void* w_row, const void* x_row);
using ToFloatFn = void (*)(const void* src, float* dst, int64_t n);
using FromFloatFn = void (*)(const float* src, void* dst, int64_t n);
// Converts n fp32 activations to the act format for weight type `wt` (the
// zero-point of wt goes into the precomputed biases).
using QuantizeActFn = void (*)(DType wt, const float* x, void* dst, int64_t n);

struct TypeTraits {
  DType type{};
  ActFormat act = ActFormat::F32;
  ToFloatFn to_float = nullptr;
  FromFloatFn from_float = nullptr;   // reference quantizer (same at every level)
  VecDotFn vec_dot = nullptr;
  GemmFn gemm = nullptr;
  int gemm_min_tok = 1;  // below this n_tok the driver calls vec_dot per (row, token)
  int row_align = 1;     // gemm row ranges should start at multiples of this
};

struct VecTraits {
  void (*fp16_to_fp32_row)(const uint16_t*, float*, int64_t) = nullptr;
  void (*fp32_to_fp16_row)(const float*, uint16_t*, int64_t) = nullptr;
  float (*dot_f32)(const float*, const float*, int64_t) = nullptr;
  float (*dot_f16_f32)(const uint16_t*, const float*, int64_t) = nullptr;
  void (*axpy_f16_f32)(float, const uint16_t*, float*, int64_t) = nullptr;
  QuantizeActFn quantize_act = nullptr;
};

struct LevelTable {
  CpuLevel level;
  const TypeTraits* (*traits)(DType t);  // nullptr for unsupported types
  VecTraits vec;
};

// Each level's table (the SIMD ones only exist when compiled in).
const LevelTable& scalar_table();
const LevelTable* avx2_table();    // nullptr if not built
const LevelTable* avx512_table();  // nullptr if not built

// The table in use. set_level_for_testing() switches it in-process (tests and
// benchmarks); it throws pl::Error if the CPU does not support the level.
const LevelTable& active();
void set_level_for_testing(CpuLevel level);
// Parses a PARALLAMA_CPU value; throws pl::Error for an unknown name.
CpuLevel parse_level(const char* name);

size_t act_row_bytes(ActFormat f, int64_t n_cols);
size_t gemm_scratch_bytes(int64_t n_cols, int64_t n_tok);
inline int64_t block_elems(DType t) { return dtype_info(t).block_elems; }

// Reference (scalar) quantizers and dequantizers, one pair per format.
void dequantize_row_ref(DType t, const void* src, float* dst, int64_t n);
void quantize_row_ref(DType t, const float* src, void* dst, int64_t n);
void quantize_act_ref(DType wt, const float* x, void* dst, int64_t n);
// The zero-point offset the activation bias folds in for weight type t.
int act_offset(DType t);

// matmul with an explicit table (tests compare levels on the same inputs).
void matmul_with(const LevelTable& table, const WeightView& w, const float* x, int64_t ldx, int64_t n_tok,
                 float* y, int64_t ldy, ThreadPool& pool);

}  // namespace pl::kernels::detail
