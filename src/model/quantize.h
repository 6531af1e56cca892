// Re-quantize a model file: every tensor gets the dtype the file-type policy
// gives it (file_type.h), converted through fp32. Metadata is kept, with
// general.file_type updated.
#pragma once

#include <string>

namespace pl {

// Throws pl::Error for an unknown type name, an unreadable input or a tensor
// whose type cannot be converted.
void quantize_model(const std::string& in_path, const std::string& out_path, const std::string& type_name,
                    int n_threads);

}  // namespace pl
