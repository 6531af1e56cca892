#include "store/details.h"

#include <array>
#include <cmath>
#include <map>

namespace pl::store {
namespace {

// general.file_type numbering (llama.cpp's llama_ftype); 4-6 and 33-35 name
// formats that were withdrawn, so they show as unknown.
constexpr std::array<std::string_view, 39> kFileTypeNames = {
    "F32",    "F16",     "Q4_0",   "Q4_1",  "",        "",      "",       "Q8_0",   "Q5_0",   "Q5_1",
    "Q2_K",   "Q3_K_S",  "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K",   "IQ2_XXS",
    "IQ2_XS", "Q2_K_S",  "IQ3_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S",  "IQ3_M",  "IQ2_S",  "IQ2_M",
    "IQ4_XS", "IQ1_M",   "BF16",   "",       "",       "",       "TQ1_0",  "TQ2_0",  "MXFP4_MOE",
};

// llama.cpp marks a file type it inferred rather than was told with this bit.
constexpr uint32_t kFileTypeGuessed = 1024;

}  // namespace

std::string format_parameter_count(uint64_t n) {
  auto scaled = [&](double unit, int decimals, const char* suffix) {
    double x = static_cast<double>(n) / unit;
    if (x == std::floor(x)) decimals = 0;
    return fmt::format("{:.{}f}{}", x, decimals, suffix);
  };
  if (n >= 1'000'000'000) return scaled(1e9, 1, "B");
  if (n >= 1'000'000) return scaled(1e6, 2, "M");
  if (n >= 1'000) return fmt::format("{:.0f}K", static_cast<double>(n) / 1e3);
  return std::to_string(n);
}

std::string file_type_name(uint32_t file_type) {
  file_type &= ~kFileTypeGuessed;
  return file_type < kFileTypeNames.size() ? std::string(kFileTypeNames[file_type]) : std::string();
}

ModelDetails details_from_gguf(const GgufFile& f) {
  ModelDetails d;
  if (const GgufValue* v = f.find("general.architecture"); v != nullptr && v->type() == GgufType::STRING) {
    d.family = std::get<std::string>(v->v);
    d.families = {d.family};
  }
  uint64_t n_params = 0;
  std::map<DType, uint64_t> n_elements_by_type;  // of the 2-D and larger tensors
  std::map<DType, uint64_t> n_elements_all;
  for (const GgufTensorInfo& t : f.tensors()) {
    n_params += t.n_elements;
    n_elements_all[t.type] += t.n_elements;
    if (t.shape.size() >= 2) n_elements_by_type[t.type] += t.n_elements;
  }
  d.parameter_size = format_parameter_count(n_params);

  // A file_type of the wrong type or an unknown number is not trusted; the
  // tensors then say what the file holds.
  if (const GgufValue* v = f.find("general.file_type"); v != nullptr) {
    try {
      d.quantization_level = file_type_name(gguf_convert<uint32_t>(*v, "general.file_type"));
    } catch (const Error&) {
    }
  }
  if (d.quantization_level.empty()) {
    const auto& counts = n_elements_by_type.empty() ? n_elements_all : n_elements_by_type;
    uint64_t best = 0;
    for (const auto& [type, n] : counts) {
      if (n > best) {
        best = n;
        d.quantization_level = std::string(dtype_name(type));
      }
    }
  }
  return d;
}

}  // namespace pl::store
