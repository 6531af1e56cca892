// GGUF v2/v3 reader: metadata, tensor infos and mmap'd tensor data.
//
// The file is untrusted input. Parsing checks every length, count, offset,
// type and dimension against the bytes that are really there and throws
// pl::GgufError naming what is wrong and where (byte offset, key or tensor).
// After a successful open every tensor's data lies inside the file, is aligned,
// and does not overlap another tensor; consumers need not re-check that.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "core/error.h"
#include "gguf/dtype.h"

namespace pl {

class MappedFile;

class GgufError : public Error {
 public:
  using Error::Error;
};

// Metadata value types, numbered as in the file.
enum class GgufType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
std::string_view gguf_type_name(GgufType t);

struct GgufValue;

struct GgufArray {
  GgufType elem_type = GgufType::UINT8;
  std::vector<GgufValue> items;
};

// One metadata value: a scalar, a string, or an array (arrays may nest).
struct GgufValue {
  using Storage = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                               std::string, GgufArray, uint64_t, int64_t, double>;
  Storage v;

  GgufValue() : v(uint8_t{0}) {}
  template <class T>
    requires std::is_constructible_v<Storage, T>
  GgufValue(T x) : v(std::move(x)) {}  // NOLINT: implicit on purpose, for writer ergonomics
  GgufValue(const char* s) : v(std::string(s)) {}

  // The variant's alternatives are listed in the file's type order, so the
  // index is the type number.
  GgufType type() const { return static_cast<GgufType>(v.index()); }
  bool is_array() const { return type() == GgufType::ARRAY; }
  const GgufArray& array() const { return std::get<GgufArray>(v); }
  bool operator==(const GgufValue&) const = default;
};
inline bool operator==(const GgufArray& a, const GgufArray& b) {
  return a.elem_type == b.elem_type && a.items == b.items;
}

struct GgufKV {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  DType type = DType::F32;
  std::vector<uint64_t> shape;  // ggml order: shape[0] is the contiguous (row) dimension
  uint64_t offset = 0;          // relative to the start of the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the file's bytes

  uint64_t ne(size_t i) const { return i < shape.size() ? shape[i] : 1; }
  std::span<const uint8_t> bytes() const { return {data, static_cast<size_t>(n_bytes)}; }
};

class GgufFile {
 public:
  static constexpr uint32_t kDefaultAlignment = 32;

  // mmap a file from disk.
  static GgufFile open(const std::string& path);
  // Parse bytes owned by the caller, who keeps them alive while the GgufFile lives
  // (tests, the fuzzer, in-memory round trips).
  static GgufFile parse(std::span<const uint8_t> bytes);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute file offset of the data section
  std::span<const uint8_t> file_bytes() const { return bytes_; }
  // True when the bytes are a read-only mapping of a file (open()), whose pages
  // the kernel can drop and re-read; false for caller-owned bytes (parse()).
  bool is_file_mapped() const { return map_ != nullptr; }
  // The path open() was given; empty for parse().
  const std::string& path() const;

  const std::vector<GgufKV>& metadata() const { return kvs_; }
  const GgufValue* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed access. Integer targets accept any stored integer type whose value
  // fits; floating targets accept FLOAT32/FLOAT64. A missing key or a value of
  // another type throws GgufError naming the key.
  template <class T>
  T get(std::string_view key) const;
  template <class T>
  std::optional<T> get_opt(std::string_view key) const {
    if (!has(key)) return std::nullopt;
    return get<T>(key);
  }
  template <class T>
  T get_or(std::string_view key, T fallback) const {
    return has(key) ? get<T>(key) : fallback;
  }
  // Arrays of scalars or strings, with the same conversions per element.
  template <class T>
  std::vector<T> get_array(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;

 private:
  std::shared_ptr<const MappedFile> map_;  // null when parsing caller-owned bytes
  std::span<const uint8_t> bytes_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<GgufKV> kvs_;
  std::vector<GgufTensorInfo> tensors_;

  void parse_all();
};

// Runs f() and returns what it returns; a pl::Error it throws comes out as
// "PATH: message" (the same class when it is a GgufError), unless the message
// names PATH already. For errors found in what was read from the file at PATH,
// so that a message never leaves the user guessing which file is bad.
template <class F>
decltype(auto) with_file_context(const std::string& path, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    if (path.empty() || std::string_view(e.what()).find(path) != std::string_view::npos) throw;
    std::string message = fmt::format("{}: {}", path, e.what());
    if (dynamic_cast<const GgufError*>(&e) != nullptr) throw GgufError(message);
    throw Error(message);
  }
}

// Conversion of one value to T, shared by get<T> and get_array<T>; throws with `what` in the message.
template <class T>
T gguf_convert(const GgufValue& v, std::string_view what);

template <class T>
T GgufFile::get(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) throw GgufError(fmt::format("missing metadata key '{}'", key));
  return gguf_convert<T>(*v, key);
}

template <class T>
std::vector<T> GgufFile::get_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) throw GgufError(fmt::format("missing metadata key '{}'", key));
  if (!v->is_array())
    throw GgufError(fmt::format("metadata key '{}': expected ARRAY, got {}", key, gguf_type_name(v->type())));
  std::vector<T> out;
  out.reserve(v->array().items.size());
  for (const GgufValue& item : v->array().items) out.push_back(gguf_convert<T>(item, key));
  return out;
}

extern template uint8_t gguf_convert<uint8_t>(const GgufValue&, std::string_view);
extern template int8_t gguf_convert<int8_t>(const GgufValue&, std::string_view);
extern template uint16_t gguf_convert<uint16_t>(const GgufValue&, std::string_view);
extern template int16_t gguf_convert<int16_t>(const GgufValue&, std::string_view);
extern template uint32_t gguf_convert<uint32_t>(const GgufValue&, std::string_view);
extern template int32_t gguf_convert<int32_t>(const GgufValue&, std::string_view);
extern template uint64_t gguf_convert<uint64_t>(const GgufValue&, std::string_view);
extern template int64_t gguf_convert<int64_t>(const GgufValue&, std::string_view);
extern template float gguf_convert<float>(const GgufValue&, std::string_view);
extern template double gguf_convert<double>(const GgufValue&, std::string_view);
extern template bool gguf_convert<bool>(const GgufValue&, std::string_view);
extern template std::string gguf_convert<std::string>(const GgufValue&, std::string_view);

}  // namespace pl
