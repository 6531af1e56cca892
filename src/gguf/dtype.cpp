#include "gguf/dtype.h"

#include <array>
#include <cctype>

namespace pl {
namespace {

struct Entry {
  DType type;
  DTypeInfo info;
};

// Block geometry from the GGUF/ggml format definition.
constexpr std::array kTypes = {
    Entry{DType::F32, {"F32", 1, 4}},         Entry{DType::F16, {"F16", 1, 2}},
    Entry{DType::Q4_0, {"Q4_0", 32, 18}},     Entry{DType::Q4_1, {"Q4_1", 32, 20}},
    Entry{DType::Q5_0, {"Q5_0", 32, 22}},     Entry{DType::Q5_1, {"Q5_1", 32, 24}},
    Entry{DType::Q8_0, {"Q8_0", 32, 34}},     Entry{DType::Q8_1, {"Q8_1", 32, 36}},
    Entry{DType::Q2_K, {"Q2_K", 256, 84}},    Entry{DType::Q3_K, {"Q3_K", 256, 110}},
    Entry{DType::Q4_K, {"Q4_K", 256, 144}},   Entry{DType::Q5_K, {"Q5_K", 256, 176}},
    Entry{DType::Q6_K, {"Q6_K", 256, 210}},   Entry{DType::Q8_K, {"Q8_K", 256, 292}},
    Entry{DType::IQ2_XXS, {"IQ2_XXS", 256, 66}}, Entry{DType::IQ2_XS, {"IQ2_XS", 256, 74}},
    Entry{DType::IQ3_XXS, {"IQ3_XXS", 256, 98}}, Entry{DType::IQ1_S, {"IQ1_S", 256, 50}},
    Entry{DType::IQ4_NL, {"IQ4_NL", 32, 18}}, Entry{DType::IQ3_S, {"IQ3_S", 256, 110}},
    Entry{DType::IQ2_S, {"IQ2_S", 256, 82}},  Entry{DType::IQ4_XS, {"IQ4_XS", 256, 136}},
    Entry{DType::I8, {"I8", 1, 1}},           Entry{DType::I16, {"I16", 1, 2}},
    Entry{DType::I32, {"I32", 1, 4}},         Entry{DType::I64, {"I64", 1, 8}},
    Entry{DType::F64, {"F64", 1, 8}},         Entry{DType::IQ1_M, {"IQ1_M", 256, 56}},
    Entry{DType::BF16, {"BF16", 1, 2}},       Entry{DType::TQ1_0, {"TQ1_0", 256, 54}},
    Entry{DType::TQ2_0, {"TQ2_0", 256, 66}},  Entry{DType::MXFP4, {"MXFP4", 32, 17}},
};

}  // namespace

std::optional<DTypeInfo> dtype_info(uint32_t raw) {
  for (const Entry& e : kTypes)
    if (static_cast<uint32_t>(e.type) == raw) return e.info;
  return std::nullopt;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const Entry& e : kTypes) {
    if (e.info.name.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i)
      same = std::toupper(static_cast<unsigned char>(name[i])) == e.info.name[i];
    if (same) return e.type;
  }
  return std::nullopt;
}

}  // namespace pl
