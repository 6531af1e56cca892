// Tensor element types as the GGUF file format numbers them (ggml_type).
// Every type a GGUF file may contain is known here with its block geometry, so
// any file can be validated and inspected, even where no kernel computes with
// that type (the kernels module says which ones it supports).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pl {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

struct DTypeInfo {
  std::string_view name;  // as gguf-dump prints it: "F32", "Q4_K", ...
  uint32_t block_elems;   // elements per block (1 for plain types)
  uint32_t block_bytes;   // bytes per block
};

// nullopt for a number that is not a known type (a corrupt or newer file).
std::optional<DTypeInfo> dtype_info(uint32_t raw);
inline DTypeInfo dtype_info(DType t) { return *dtype_info(static_cast<uint32_t>(t)); }
inline std::string_view dtype_name(DType t) { return dtype_info(t).name; }
// Case-insensitive lookup by name ("q4_k" -> Q4_K).
std::optional<DType> dtype_from_name(std::string_view name);

// Bytes of one row of n_elems elements; n_elems must be a multiple of the block.
inline size_t row_bytes(DType t, size_t n_elems) {
  DTypeInfo i = dtype_info(t);
  return n_elems / i.block_elems * i.block_bytes;
}

}  // namespace pl
