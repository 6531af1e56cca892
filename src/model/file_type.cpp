#include "model/file_type.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include <fmt/core.h>

namespace pl {
namespace {

// general.file_type values are the numbers the GGUF ecosystem uses.
constexpr std::array kFileTypes = {
    FileType{"f32", 0, DType::F32, false},     FileType{"f16", 1, DType::F16, false},
    FileType{"q4_0", 2, DType::Q4_0, false},   FileType{"q4_1", 3, DType::Q4_1, false},
    FileType{"q8_0", 7, DType::Q8_0, false},   FileType{"q5_0", 8, DType::Q5_0, false},
    FileType{"q5_1", 9, DType::Q5_1, false},   FileType{"q4_k", 14, DType::Q4_K, false},
    FileType{"q4_k_m", 15, DType::Q4_K, true}, FileType{"q5_k", 16, DType::Q5_K, false},
    FileType{"q5_k_m", 17, DType::Q5_K, true}, FileType{"q6_k", 18, DType::Q6_K, false},
    FileType{"bf16", 32, DType::BF16, false},
};

bool is_k_quant(DType t) { return t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K; }

// Block index from "blk.N.xxx", or -1.
int layer_of(std::string_view name) {
  if (name.substr(0, 4) != "blk.") return -1;
  int layer = -1;
  auto r = std::from_chars(name.data() + 4, name.data() + name.size(), layer);
  return r.ec == std::errc() ? layer : -1;
}

// The first and last eighth of the layers, and every third one between, are
// the most sensitive to quantization error; *_K_M spends extra bits there.
bool wants_more_bits(int layer, int n_layer) {
  int eighth = n_layer / 8;
  return layer < eighth || layer >= 7 * n_layer / 8 || (layer - eighth) % 3 == 2;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

DType fit_row(DType t, uint64_t ne0) {
  if (ne0 % dtype_info(t).block_elems == 0) return t;
  if (is_k_quant(t)) {
    DType legacy = t == DType::Q4_K ? DType::Q5_0 : t == DType::Q5_K ? DType::Q5_1 : DType::Q8_0;
    return fit_row(legacy, ne0);
  }
  return DType::F16;
}

// The dtype the policy wants for a tensor, before its row length is considered.
DType wanted_type_for(const FileType& ft, std::string_view name, int n_dims, int n_layer) {
  if (n_dims < 2 || ft.base == DType::F32) return DType::F32;
  if (ft.base == DType::F16 || ft.base == DType::BF16) return ft.base;
  if (name == "output.weight") {
    // The output projection decides every logit: keep it at 6+ bits.
    return ft.base == DType::Q8_0 ? DType::Q8_0 : DType::Q6_K;
  }
  if (ft.mixed_k && (ends_with(name, "attn_v.weight") || ends_with(name, "ffn_down.weight"))) {
    int layer = layer_of(name);
    if (layer >= 0 && wants_more_bits(layer, n_layer)) return DType::Q6_K;
  }
  return ft.base;
}

}  // namespace

std::optional<FileType> file_type_from_name(std::string_view name) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const FileType& ft : kFileTypes)
    if (ft.name == lower) return ft;
  return std::nullopt;
}

std::string file_type_names() {
  std::string s;
  for (const FileType& ft : kFileTypes) s += (s.empty() ? "" : ", ") + std::string(ft.name);
  return s;
}

DType tensor_type_for(const FileType& ft, std::string_view name, int n_dims, uint64_t ne0, int n_layer) {
  return fit_row(wanted_type_for(ft, name, n_dims, n_layer), ne0);
}

DType TypeChooser::choose(std::string_view name, int n_dims, uint64_t ne0) {
  const DType wanted = wanted_type_for(ft_, name, n_dims, n_layer_);
  const DType got = fit_row(wanted, ne0);
  if (n_dims >= 2) ++n_matrices_;
  if (got == wanted) return got;
  auto it = std::find_if(fallbacks_.begin(), fallbacks_.end(),
                         [&](const Fallback& f) { return f.wanted == wanted && f.got == got; });
  if (it == fallbacks_.end()) it = fallbacks_.insert(fallbacks_.end(), Fallback{wanted, got, 0, {}});
  ++it->n_tensors;
  if (std::find(it->row_lengths.begin(), it->row_lengths.end(), ne0) == it->row_lengths.end())
    it->row_lengths.push_back(ne0);
  return got;
}

std::string TypeChooser::notes() const {
  std::string out;
  for (const Fallback& f : fallbacks_) {
    std::string rows;
    for (uint64_t n : f.row_lengths) rows += (rows.empty() ? "" : ", ") + std::to_string(n);
    const bool one = f.n_tensors == 1;
    out += fmt::format("{}note: {} of {} matrices {} {} instead of {}: {} rows ({}) are not a multiple of {}",
                       out.empty() ? "" : "\n", f.n_tensors, n_matrices_, one ? "is" : "are", dtype_name(f.got),
                       dtype_name(f.wanted), one ? "its" : "their", rows, dtype_info(f.wanted).block_elems);
  }
  return out;
}

}  // namespace pl
