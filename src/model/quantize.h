// Re-quantize a model file: every tensor gets the dtype the file-type policy
// gives it (file_type.h), converted through fp32. Metadata is kept, with
// general.file_type updated.
#pragma once

#include <string>

namespace pl {

// Throws pl::Error for an unknown type name, an unwritable output path, an
// unreadable input or a tensor whose type cannot be converted. Returns notes
// for the user (TypeChooser::notes: matrices that fell back to another type),
// empty when there are none.
std::string quantize_model(const std::string& in_path, const std::string& out_path, const std::string& type_name,
                           int n_threads);

}  // namespace pl
