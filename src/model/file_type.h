// Model file types ("q4_k_m", "q8_0", ...) and the per-tensor type policy that
// make-model and quantize share: which dtype each tensor of a llama-family
// model gets under a given file type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/dtype.h"

namespace pl {

struct FileType {
  std::string_view name;  // "q4_k_m"
  uint32_t gguf_id;       // value of general.file_type
  DType base;             // dtype of most matrices
  bool mixed_k;           // *_K_M: more bits for some attn_v/ffn_down layers
};

// Names accepted: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k q4_k_m q5_k_m (any case).
std::optional<FileType> file_type_from_name(std::string_view name);
std::string file_type_names();  // for help and error messages

// The dtype for tensor `name` (row length ne0) of a model with n_layer blocks.
// 1-D tensors stay F32. A row length that the chosen block does not divide
// falls back to a compatible type (K-quant -> legacy 32-block quant -> F16).
DType tensor_type_for(const FileType& ft, std::string_view name, int n_dims, uint64_t ne0, int n_layer);

// tensor_type_for over a whole model, keeping count of the matrices that fell
// back, so a tool can tell the user instead of silently writing another type.
class TypeChooser {
 public:
  TypeChooser(const FileType& ft, int n_layer) : ft_(ft), n_layer_(n_layer) {}
  DType choose(std::string_view name, int n_dims, uint64_t ne0);
  // One line per (wanted, written) pair, e.g. "note: 14 of 16 matrices are
  // Q5_0 instead of Q4_K: their rows (320) are not a multiple of 256";
  // empty when every matrix got the type the policy wanted.
  std::string notes() const;

 private:
  struct Fallback {
    DType wanted, got;
    int n_tensors = 0;
    std::vector<uint64_t> row_lengths;  // distinct, in order of first use
  };
  FileType ft_;
  int n_layer_;
  int n_matrices_ = 0;
  std::vector<Fallback> fallbacks_;
};

}  // namespace pl
