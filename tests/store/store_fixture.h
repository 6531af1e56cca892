// Small GGUF files and a temp store for the store tests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gguf/gguf_writer.h"
#include "store/store.h"
#include "test_util.h"

namespace pl::test {

struct TinyTensor {
  std::string name;
  DType type = DType::F32;
  std::vector<uint64_t> shape;
};

// A GGUF with the given architecture, optional general.file_type and tensors
// (zero-filled). The default is a 2-D and a 1-D F32 tensor: 64*16 + 64 = 1088 elements.
inline void write_tiny_gguf(const std::filesystem::path& path, const std::string& arch = "llama",
                            std::optional<uint32_t> file_type = std::nullopt,
                            std::vector<TinyTensor> tensors = {{"w", DType::F32, {64, 16}},
                                                               {"n", DType::F32, {64}}},
                            uint64_t seed = 0) {
  GgufWriter w;
  w.set("general.architecture", arch);
  if (file_type) w.set("general.file_type", *file_type);
  // Different seeds give different bytes, hence different blobs.
  w.set("test.seed", seed);
  for (const TinyTensor& t : tensors) {
    uint64_t n = 1;
    for (uint64_t d : t.shape) n *= d;
    w.add_tensor(t.name, t.type, t.shape, std::vector<uint8_t>(row_bytes(t.type, n), 0));
  }
  w.write(path.string());
}

// A store in a fresh temp directory.
struct StoreFixture {
  TempDir dir;
  store::Store store{dir.path / "models"};
  std::filesystem::path gguf(const std::string& name, uint64_t seed = 0) {
    std::filesystem::path p = dir.path / name;
    write_tiny_gguf(p, "llama", std::nullopt, {{"w", DType::F32, {64, 16}}, {"n", DType::F32, {64}}}, seed);
    return p;
  }
  size_t n_blobs() const {
    size_t n = 0;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(store.root() / "blobs", ec), end; !ec && it != end; ++it) ++n;
    return n;
  }
};

}  // namespace pl::test
