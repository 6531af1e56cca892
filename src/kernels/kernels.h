// Compute kernels: dtype conversion, quantization and the batched matmul the
// forward pass runs on, plus the small vector helpers attention needs.
//
// Every kernel has a scalar reference; AVX2 (+FMA+F16C) and AVX-512
// (F/BW/VL/DQ + VNNI) variants are picked once at start-up from cpuid, so one
// binary runs on any x86-64 and uses the best the CPU has. PARALLAMA_CPU =
// scalar|avx2|avx512 forces a lower level (an unknown or unsupported value is
// an error at start-up, not a silent fallback).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "gguf/dtype.h"
#include "kernels/thread_pool.h"

namespace pl::kernels {

enum class CpuLevel { Scalar = 0, Avx2 = 1, Avx512 = 2 };

// The level the kernels run at: the best the CPU supports, or lower if
// PARALLAMA_CPU says so. Chosen on first use; throws pl::Error for a bad
// PARALLAMA_CPU value.
CpuLevel cpu_level();
std::string_view cpu_level_name();
std::string_view cpu_level_name(CpuLevel level);
// The best level this CPU (and OS, for the register state) supports.
CpuLevel cpu_level_supported();

// True where the type has dequantize_row and matmul (the weight types).
bool is_supported(DType t);
// True where quantize_row can produce the type.
bool can_quantize(DType t);

float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);   // round to nearest even
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);   // round to nearest even

// n must be a multiple of the type's block size; src/dst hold n elements.
// dequantize_row also accepts the activation-only types Q8_1 and Q8_K.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);
// Reference-quality quantization (K-quants search their scales and mins).
void quantize_row(DType t, const float* src, void* dst, int64_t n);

struct PackedWeights;

// A weight matrix as stored in GGUF: n_rows rows of n_cols elements
// (n_cols = shape[0], contiguous), of `type`.
struct WeightView {
  DType type;
  int64_t n_rows;
  int64_t n_cols;
  const void* data;  // [n_rows, row_bytes(type, n_cols)]
  // The same matrix repacked for the active level's kernels (see pack_weights),
  // or nullptr. When set and the active level has a packed kernel for the type,
  // matmul reads only this and never touches `data`.
  const PackedWeights* packed = nullptr;
};

// A weight matrix repacked once, at load, into the row-interleaved layout the
// SIMD kernels stream as is: groups of 16 rows, each group's blocks contiguous
// along K, the 16 rows' bytes interleaved 4 at a time so one 64-byte load feeds
// one VNNI dot product for 16 rows, scales gathered per group. Same size as the
// file's blocks (Q6_K: +1% to keep 64-byte alignment). Layouts in kernels_internal.h.
struct PackedWeights {
  DType type;
  int64_t n_rows;
  int64_t n_cols;
  int64_t n_groups;              // ceil(n_rows / 16); missing rows are zero
  size_t group_bytes;            // bytes of one 16-row group, all columns
  const uint8_t* data = nullptr;  // [n_groups, group_bytes], 64-byte aligned
  std::shared_ptr<void> storage;  // owns data: its own allocation, or a PackArena's
  size_t n_bytes() const { return static_cast<size_t>(n_groups) * group_bytes; }
};

// True when the active level has a packed kernel for type t.
bool has_packed_kernel(DType t);
// Bytes pack_weights would take for w (a multiple of 64), or 0 when the active
// level has no packed kernel for its type.
size_t packed_bytes(const WeightView& w);

// One allocation for many packed matrices, on transparent huge pages: a decode
// step streams every matrix once, and on 4 KiB pages each page costs a TLB
// miss (a two-level walk under a hypervisor). One arena rather than one huge
// page region per matrix, which would round each up to 2 MiB.
class PackArena {
 public:
  explicit PackArena(size_t capacity);  // bytes; the sum of packed_bytes() of what goes in
  size_t used() const { return used_; }

 private:
  friend std::unique_ptr<PackedWeights> pack_weights(const WeightView&, int, PackArena*);
  uint8_t* take(size_t n);  // 64-byte aligned; fails past the capacity
  std::shared_ptr<uint8_t> mem_;
  size_t capacity_ = 0;
  size_t used_ = 0;
};

// Repacks w (which must stay valid only for the call) when the active level
// has a packed kernel for its type; nullptr otherwise. Uses up to n_threads
// threads for large matrices. The bytes come from `arena` when given (which
// the result then keeps alive), else from an allocation of its own.
std::unique_ptr<PackedWeights> pack_weights(const WeightView& w, int n_threads = 1, PackArena* arena = nullptr);

// y[t * ldy + r] = sum_k W[r][k] * x[t * ldx + k] for t < n_tok, r < w.n_rows.
// x: [n_tok, ldx] fp32, y: [n_tok, ldy] fp32. Quantized weight types quantize x
// once per call to an 8-bit activation format (per-32 or per-256 scales), so
// results carry that rounding (see docs in matmul.cpp); F32/F16/BF16 weights
// use x as is. Runs on all pool threads; no allocation in steady state.
void matmul(const WeightView& w, const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy,
            ThreadPool& pool);

// One output of matmul_multi: y[t * ldy + r] for the rows of *w.
struct MatmulOutput {
  const WeightView* w;
  float* y;
  int64_t ldy;
};
// matmul for up to 4 matrices over the same input (a layer's Q/K/V, gate/up),
// all with x's n_cols. Where their kernels take the same activations, x is
// converted once and the matrices' rows share one parallel run: fewer
// conversions and pool dispatches, and the small ones (K, V) balance with the
// large. Each output equals what matmul gives for its matrix alone, bit for bit.
void matmul_multi(std::span<const MatmulOutput> outs, const float* x, int64_t ldx, int64_t n_tok, ThreadPool& pool);

// ---- vector helpers (single-threaded; same dispatch) ----
void fp16_to_fp32_row(const uint16_t* src, float* dst, int64_t n);
void fp32_to_fp16_row(const float* src, uint16_t* dst, int64_t n);  // round to nearest even
float dot_f32(const float* a, const float* b, int64_t n);
float dot_f16_f32(const uint16_t* a, const float* b, int64_t n);
// y[i] += a * x[i], x fp16.
void axpy_f16_f32(float a, const uint16_t* x, float* y, int64_t n);
// gate[i] = silu(gate[i]) * up[i] (the SwiGLU feed-forward activation).
void swiglu(float* gate, const float* up, int64_t n);
// out[i] = x[i] * inv * w[i], inv = 1 / sqrt(mean(x^2) + eps) (RMSNorm). The
// sum of squares is taken in double (in any order: levels may differ in its
// last bits, not in the float result but for rare ties); out may alias x.
void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps);

}  // namespace pl::kernels
