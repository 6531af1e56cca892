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
// One matmul over packed weights (PackedWeights): groups of 16 rows.
struct PackedGemmArgs {
  const uint8_t* w;     // [n_groups, group_bytes]
  size_t group_bytes;
  int64_t n_rows;
  int64_t n_cols;
  const uint8_t* xa;    // [n_tok, xa_row_bytes], activations in act format
  size_t xa_row_bytes;
  int64_t n_tok;
  float* y;             // y[t * ldy + r]
  int64_t ldy;
};
// Computes y for the rows of groups [g0, g1) and all n_tok tokens.
using PackedGemmFn = void (*)(const PackedGemmArgs& a, int64_t g0, int64_t g1);

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
  PackedGemmFn gemm_packed = nullptr;  // kernel over PackedWeights, if this level has one
};

struct VecTraits {
  void (*fp16_to_fp32_row)(const uint16_t*, float*, int64_t) = nullptr;
  void (*fp32_to_fp16_row)(const float*, uint16_t*, int64_t) = nullptr;
  float (*dot_f32)(const float*, const float*, int64_t) = nullptr;
  float (*dot_f16_f32)(const uint16_t*, const float*, int64_t) = nullptr;
  void (*axpy_f16_f32)(float, const uint16_t*, float*, int64_t) = nullptr;
  QuantizeActFn quantize_act = nullptr;
  void (*swiglu)(float* gate, const float* up, int64_t n) = nullptr;
  void (*rmsnorm)(float* out, const float* x, const float* w, int64_t n, float eps) = nullptr;
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

// The packed Q4_0 layout stores blocks 2p and 2p + 1 of a row as the low and
// high nibbles of the same bytes; the kernels use the odd block's nibbles in
// place, as 16 * q (one AND instead of a shift and an AND), so that block's
// sums, bias included, are 16 times the true ones and its scale is d / 16.
// Exact: |16 * sum| < 2^22 and d / 16 has d's significant bits.
inline constexpr int32_t act_bias_scale(DType weight_type, int64_t block) {
  return weight_type == DType::Q4_0 && block % 2 == 1 ? 16 : 1;
}

// The fields of activation block `block` after its qs, from the block's
// absolute maximum and the sum of its qs: every quantizer (reference and SIMD)
// fills them here, so they agree bit for bit. `offset` is act_offset(weight_type).
// Always inlined: the callers are compiled for different ISA levels, and a
// shared out-of-line copy could carry another level's instructions.
[[gnu::always_inline]] inline void finish_act_block(ActQ8x32& b, DType weight_type, int offset, int64_t block, float amax, int sum) {
  b.d = amax / 127.0f;
  b.bias = -offset * sum;
  b.dsum = b.d * static_cast<float>(sum);
  b.bias_fbits = kFloatSumStart + b.bias * act_bias_scale(weight_type, block);
}

// ---- Packed weight layouts (PackedWeights) ----
// A group is 16 rows (r < 16, zero-padded past n_rows). "zmm j lane r" means
// bytes [64j + 4r, 64j + 4r + 4) of a 64-byte vector: 4 consecutive elements
// of row r, the unit one vpdpbusd lane consumes. fp16 scales are stored as
// [16] per block, row r at index r.
//   Q4_0: per pair of blocks p (elements 64p..64p+63): 8 vectors of nibbles,
//         zmm j lane r byte i = q(64p + 4j + i) | q(64p + 32 + 4j + i) << 4,
//         then d[16] of block 2p and d[16] of block 2p+1: 576 bytes. An odd
//         last block pairs with zeros.
//   Q8_0: per pair: block 2p then 2p+1, each 8 vectors, zmm j lane r byte i =
//         q(32b + 4j + i) + 128 (unsigned), then d[16] x 2: 1088 bytes.
//   Q4_K: per super-block: chunk c < 4 of 8 vectors, zmm j lane r byte i =
//         the file's qs[32c + 4j + i] (low nibble: sub-block 2c, high: 2c+1);
//         then lane r = d | dmin << 16 (64 bytes); then 3 vectors, lane r =
//         the file's scale bytes 4v..4v+3: 2304 bytes.
//   Q6_K: per super-block: chunk c < 4 of 8 vectors of low nibbles (as Q4_0:
//         low = element 64c + 4j + i, high = element 64c + 32 + 4j + i); then
//         half h < 2 of 8 vectors of high bits, zmm j lane r byte i bits
//         2m..2m+1 = bits 4-5 of element 128h + 32m + 4j + i; then int8
//         scales [16 sub-blocks][16 rows]; then d[16]; 32 zero bytes: 3392 bytes.
inline constexpr int kPackRows = 16;
size_t packed_group_bytes(DType t, int64_t n_cols);  // 0: no packed layout for t
void pack_groups(const WeightView& w, int64_t g0, int64_t g1, uint8_t* dst);  // dst: group g0
// Back to the file's block format (tests): rows [0, n_rows) into dst.
void unpack_groups(const PackedWeights& p, uint8_t* dst);

// matmul with an explicit table (tests compare levels on the same inputs).
void matmul_with(const LevelTable& table, const WeightView& w, const float* x, int64_t ldx, int64_t n_tok,
                 float* y, int64_t ldy, ThreadPool& pool);
void matmul_multi_with(const LevelTable& table, std::span<const MatmulOutput> outs, const float* x, int64_t ldx,
                       int64_t n_tok, ThreadPool& pool);

}  // namespace pl::kernels::detail
