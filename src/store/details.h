// What /api/tags and /api/show print about a model's weights, read from its GGUF.
#pragma once

#include <cstdint>
#include <string>

#include "gguf/gguf.h"
#include "store/store.h"

namespace pl::store {

// Ollama's style: >= 1e9 "8B" / "8.0B" (one decimal unless whole), >= 1e6
// "494M" / "494.03M" (two decimals unless whole), >= 1e3 "260K" (rounded),
// else the plain count.
std::string format_parameter_count(uint64_t n);
// Name of a general.file_type value as Ollama shows it ("Q4_K_M"); "" when unknown.
std::string file_type_name(uint32_t file_type);
// family and families from general.architecture, parameter_size from the total
// element count of all tensors, quantization_level from general.file_type or,
// without one, the dtype holding most elements of the 2-D (weight) tensors.
ModelDetails details_from_gguf(const GgufFile& f);

}  // namespace pl::store
