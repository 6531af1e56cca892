// GGUF v3 writer. Metadata keeps insertion order; tensors are laid out in the
// order added, each at the next multiple of the alignment, padding zero-filled
// (the layout the reference tools write, so files round-trip byte for byte).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"

namespace pl {

// Throws pl::Error when a file cannot be written at path: it is a directory or
// its directory does not exist. For tools to call before hours of work, not
// after; write() checks again.
void check_output_path(const std::string& path);

class GgufWriter {
 public:
  GgufWriter() = default;
  // Start from an existing file: same version, metadata and tensors (data referenced, not copied).
  static GgufWriter from_file(const GgufFile& f);

  void set_version(uint32_t v) { version_ = v; }
  // Insert or replace (in place, keeping its position) a metadata key.
  void set(std::string key, GgufValue value);
  bool remove(std::string_view key);
  const std::vector<GgufKV>& metadata() const { return kvs_; }

  // The data is referenced until write(); the caller keeps it alive.
  // Throws pl::Error when the shape does not fit the dtype's blocks or the byte count is wrong.
  void add_tensor(std::string name, DType type, std::vector<uint64_t> shape, std::span<const uint8_t> data);
  // Same, but the writer owns the data.
  void add_tensor(std::string name, DType type, std::vector<uint64_t> shape, std::vector<uint8_t> data);

  std::vector<uint8_t> to_bytes() const;
  // Writes to path.tmp then renames, so a crash never leaves a half-written model;
  // on any failure path.tmp is removed. Checks the path first (check_output_path).
  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    DType type;
    std::vector<uint64_t> shape;
    std::span<const uint8_t> data;
    size_t owned_index = SIZE_MAX;  // into owned_ when the writer owns the bytes
  };
  uint32_t version_ = 3;
  std::vector<GgufKV> kvs_;
  std::vector<Tensor> tensors_;
  std::vector<std::vector<uint8_t>> owned_;

  uint32_t alignment() const;
  template <class Sink>
  void emit(Sink& sink) const;
};

}  // namespace pl
