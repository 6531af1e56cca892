#include "gguf/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_set>
#include <utility>

#include "core/mapped_file.h"

namespace pl {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxArrayDepth = 8;        // real files nest at most 2; deeper is hostile
constexpr uint64_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr uint64_t kMaxStringBytes = uint64_t{1} << 30;

// Bounds-checked little-endian cursor over the file bytes. Every read names
// the offset it failed at, so an error points into the file.
class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> b) : b_(b) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return b_.size() - pos_; }

  void need(uint64_t n, std::string_view what) const {
    if (n > remaining())
      throw GgufError(fmt::format("truncated file: {} needs {} bytes at offset {}, but only {} remain", what, n,
                                  pos_, remaining()));
  }

  template <class T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T x;
    std::memcpy(&x, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return x;
  }

  std::string read_string(std::string_view what) {
    uint64_t start = pos_;
    uint64_t n = read<uint64_t>(what);
    if (n > kMaxStringBytes || n > remaining())
      throw GgufError(fmt::format("bad string length {} for {} at offset {} ({} bytes remain)", n, what, start,
                                  remaining()));
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), static_cast<size_t>(n));
    pos_ += n;
    return s;
  }

 private:
  std::span<const uint8_t> b_;
  uint64_t pos_ = 0;
};

// Smallest number of bytes one value of this type occupies, used to reject
// element counts that cannot possibly fit before allocating for them.
uint64_t min_value_bytes(GgufType t) {
  switch (t) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::BOOL:
      return 1;
    case GgufType::UINT16:
    case GgufType::INT16:
      return 2;
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::FLOAT32:
      return 4;
    case GgufType::UINT64:
    case GgufType::INT64:
    case GgufType::FLOAT64:
    case GgufType::STRING:  // length prefix
      return 8;
    case GgufType::ARRAY:  // element type + count
      return 12;
  }
  return 1;
}

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::FLOAT64); }

GgufValue read_value(Cursor& c, GgufType type, const std::string& key, int depth);

GgufArray read_array(Cursor& c, const std::string& key, int depth) {
  if (depth >= kMaxArrayDepth)
    throw GgufError(fmt::format("metadata key '{}': arrays nested deeper than {} at offset {}", key,
                                kMaxArrayDepth, c.pos()));
  uint64_t at = c.pos();
  uint32_t raw = c.read<uint32_t>("array element type");
  if (!valid_type(raw))
    throw GgufError(fmt::format("metadata key '{}': bad array element type {} at offset {}", key, raw, at));
  GgufArray a;
  a.elem_type = static_cast<GgufType>(raw);
  uint64_t count_at = c.pos();
  uint64_t n = c.read<uint64_t>("array length");
  uint64_t min_each = min_value_bytes(a.elem_type);
  if (n > c.remaining() / min_each)
    throw GgufError(fmt::format("metadata key '{}': array of {} {} at offset {} cannot fit in the {} bytes left",
                                key, n, gguf_type_name(a.elem_type), count_at, c.remaining()));
  a.items.reserve(static_cast<size_t>(n));
  for (uint64_t i = 0; i < n; ++i) a.items.push_back(read_value(c, a.elem_type, key, depth + 1));
  return a;
}

GgufValue read_value(Cursor& c, GgufType type, const std::string& key, int depth) {
  switch (type) {
    case GgufType::UINT8: return c.read<uint8_t>("uint8 value");
    case GgufType::INT8: return c.read<int8_t>("int8 value");
    case GgufType::UINT16: return c.read<uint16_t>("uint16 value");
    case GgufType::INT16: return c.read<int16_t>("int16 value");
    case GgufType::UINT32: return c.read<uint32_t>("uint32 value");
    case GgufType::INT32: return c.read<int32_t>("int32 value");
    case GgufType::FLOAT32: return c.read<float>("float32 value");
    case GgufType::UINT64: return c.read<uint64_t>("uint64 value");
    case GgufType::INT64: return c.read<int64_t>("int64 value");
    case GgufType::FLOAT64: return c.read<double>("float64 value");
    case GgufType::BOOL: {
      uint64_t at = c.pos();
      uint8_t b = c.read<uint8_t>("bool value");
      if (b > 1) throw GgufError(fmt::format("metadata key '{}': bool value {} at offset {}", key, b, at));
      return b == 1;
    }
    case GgufType::STRING: return c.read_string("string value");
    case GgufType::ARRAY: return read_array(c, key, depth);
  }
  throw GgufError(fmt::format("metadata key '{}': bad value type", key));
}

template <class T>
T convert_int(const GgufValue& v, std::string_view what) {
  auto fits = [&](auto x) -> T {
    if (!std::in_range<T>(x))
      throw GgufError(fmt::format("metadata key '{}': value {} does not fit the expected type", what, x));
    return static_cast<T>(x);
  };
  switch (v.type()) {
    case GgufType::UINT8: return fits(std::get<uint8_t>(v.v));
    case GgufType::INT8: return fits(std::get<int8_t>(v.v));
    case GgufType::UINT16: return fits(std::get<uint16_t>(v.v));
    case GgufType::INT16: return fits(std::get<int16_t>(v.v));
    case GgufType::UINT32: return fits(std::get<uint32_t>(v.v));
    case GgufType::INT32: return fits(std::get<int32_t>(v.v));
    case GgufType::UINT64: return fits(std::get<uint64_t>(v.v));
    case GgufType::INT64: return fits(std::get<int64_t>(v.v));
    default:
      throw GgufError(fmt::format("metadata key '{}': expected an integer, got {}", what, gguf_type_name(v.type())));
  }
}

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UINT8: return "UINT8";
    case GgufType::INT8: return "INT8";
    case GgufType::UINT16: return "UINT16";
    case GgufType::INT16: return "INT16";
    case GgufType::UINT32: return "UINT32";
    case GgufType::INT32: return "INT32";
    case GgufType::FLOAT32: return "FLOAT32";
    case GgufType::BOOL: return "BOOL";
    case GgufType::STRING: return "STRING";
    case GgufType::ARRAY: return "ARRAY";
    case GgufType::UINT64: return "UINT64";
    case GgufType::INT64: return "INT64";
    case GgufType::FLOAT64: return "FLOAT64";
  }
  return "?";
}

template <class T>
T gguf_convert(const GgufValue& v, std::string_view what) {
  if constexpr (std::is_same_v<T, bool>) {
    if (v.type() != GgufType::BOOL)
      throw GgufError(fmt::format("metadata key '{}': expected BOOL, got {}", what, gguf_type_name(v.type())));
    return std::get<bool>(v.v);
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (v.type() != GgufType::STRING)
      throw GgufError(fmt::format("metadata key '{}': expected STRING, got {}", what, gguf_type_name(v.type())));
    return std::get<std::string>(v.v);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (v.type() == GgufType::FLOAT32) return static_cast<T>(std::get<float>(v.v));
    if (v.type() == GgufType::FLOAT64) return static_cast<T>(std::get<double>(v.v));
    throw GgufError(fmt::format("metadata key '{}': expected a float, got {}", what, gguf_type_name(v.type())));
  } else {
    return convert_int<T>(v, what);
  }
}

template uint8_t gguf_convert<uint8_t>(const GgufValue&, std::string_view);
template int8_t gguf_convert<int8_t>(const GgufValue&, std::string_view);
template uint16_t gguf_convert<uint16_t>(const GgufValue&, std::string_view);
template int16_t gguf_convert<int16_t>(const GgufValue&, std::string_view);
template uint32_t gguf_convert<uint32_t>(const GgufValue&, std::string_view);
template int32_t gguf_convert<int32_t>(const GgufValue&, std::string_view);
template uint64_t gguf_convert<uint64_t>(const GgufValue&, std::string_view);
template int64_t gguf_convert<int64_t>(const GgufValue&, std::string_view);
template float gguf_convert<float>(const GgufValue&, std::string_view);
template double gguf_convert<double>(const GgufValue&, std::string_view);
template bool gguf_convert<bool>(const GgufValue&, std::string_view);
template std::string gguf_convert<std::string>(const GgufValue&, std::string_view);

GgufFile GgufFile::open(const std::string& path) {
  auto map = std::make_shared<const MappedFile>(path);
  GgufFile f;
  f.map_ = map;
  f.bytes_ = map->bytes();
  try {
    f.parse_all();
  } catch (const GgufError& e) {
    throw GgufError(fmt::format("{}: {}", path, e.what()));
  }
  return f;
}

const std::string& GgufFile::path() const {
  static const std::string kNone;
  return map_ != nullptr ? map_->path() : kNone;
}

GgufFile GgufFile::parse(std::span<const uint8_t> bytes) {
  GgufFile f;
  f.bytes_ = bytes;
  f.parse_all();
  return f;
}

void GgufFile::parse_all() {
  Cursor c(bytes_);
  uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic) throw GgufError("not a GGUF file (bad magic at offset 0)");
  version_ = c.read<uint32_t>("version");
  if (version_ == 1) throw GgufError("GGUF version 1 is not supported (only 2 and 3)");
  if (version_ != 2 && version_ != 3) {
    if (version_ == 0x02000000 || version_ == 0x03000000)
      throw GgufError("big-endian GGUF files are not supported");
    throw GgufError(fmt::format("unsupported GGUF version {} at offset 4 (expected 2 or 3)", version_));
  }
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("metadata count");
  // A key-value pair needs at least 8 (key length) + 4 (type) + 1 bytes, a tensor info 8 + 4 + 4 + 8.
  if (n_kv > c.remaining() / 13)
    throw GgufError(fmt::format("metadata count {} at offset 16 cannot fit in a {}-byte file", n_kv, bytes_.size()));
  if (n_tensors > c.remaining() / 24)
    throw GgufError(fmt::format("tensor count {} at offset 8 cannot fit in a {}-byte file", n_tensors, bytes_.size()));

  std::unordered_set<std::string> seen_keys;
  kvs_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    uint64_t at = c.pos();
    std::string key = c.read_string("metadata key");
    if (key.empty()) throw GgufError(fmt::format("empty metadata key at offset {}", at));
    if (!seen_keys.insert(key).second)
      throw GgufError(fmt::format("duplicate metadata key '{}' at offset {}", key, at));
    uint64_t type_at = c.pos();
    uint32_t raw = c.read<uint32_t>("metadata value type");
    if (!valid_type(raw))
      throw GgufError(fmt::format("metadata key '{}': bad value type {} at offset {}", key, raw, type_at));
    GgufValue value = read_value(c, static_cast<GgufType>(raw), key, 0);
    kvs_.push_back({std::move(key), std::move(value)});
  }

  if (const GgufValue* a = find("general.alignment")) {
    uint64_t al = 0;
    try {
      al = gguf_convert<uint64_t>(*a, "general.alignment");
    } catch (const GgufError&) {
      throw GgufError(fmt::format("general.alignment must be an unsigned integer, got {}", gguf_type_name(a->type())));
    }
    if (al == 0 || (al & (al - 1)) != 0 || al > (1u << 20))
      throw GgufError(fmt::format("general.alignment {} is not a power of two up to 1 MiB", al));
    alignment_ = static_cast<uint32_t>(al);
  }

  std::unordered_set<std::string> seen_tensors;
  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    uint64_t at = c.pos();
    GgufTensorInfo t;
    t.name = c.read_string("tensor name");
    if (!seen_tensors.insert(t.name).second)
      throw GgufError(fmt::format("duplicate tensor name '{}' at offset {}", t.name, at));
    uint32_t n_dims = c.read<uint32_t>("tensor dimension count");
    if (n_dims == 0 || n_dims > kMaxDims)
      throw GgufError(fmt::format("tensor '{}': {} dimensions (expected 1 to {})", t.name, n_dims, kMaxDims));
    t.n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = c.read<uint64_t>("tensor dimension");
      if (ne == 0) throw GgufError(fmt::format("tensor '{}': dimension {} is zero", t.name, d));
      if (ne > (uint64_t{1} << 62) / t.n_elements)
        throw GgufError(fmt::format("tensor '{}': element count overflows", t.name));
      t.n_elements *= ne;
      t.shape.push_back(ne);
    }
    uint64_t type_at = c.pos();
    uint32_t raw = c.read<uint32_t>("tensor type");
    std::optional<DTypeInfo> info = dtype_info(raw);
    if (!info) throw GgufError(fmt::format("tensor '{}': unknown type {} at offset {}", t.name, raw, type_at));
    t.type = static_cast<DType>(raw);
    if (t.shape[0] % info->block_elems != 0)
      throw GgufError(fmt::format("tensor '{}': row of {} elements is not a multiple of the {} block size {}",
                                  t.name, t.shape[0], info->name, info->block_elems));
    t.n_bytes = t.n_elements / info->block_elems * info->block_bytes;
    t.offset = c.read<uint64_t>("tensor offset");
    if (t.offset % alignment_ != 0)
      throw GgufError(fmt::format("tensor '{}': offset {} is not a multiple of the alignment {}", t.name, t.offset,
                                  alignment_));
    tensors_.push_back(std::move(t));
  }

  data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  uint64_t data_size = data_offset_ <= bytes_.size() ? bytes_.size() - data_offset_ : 0;
  if (!tensors_.empty() && data_offset_ > bytes_.size())
    throw GgufError(fmt::format("truncated file: data section would start at offset {} but the file has {} bytes",
                                data_offset_, bytes_.size()));

  // Every tensor inside the data section, none overlapping another.
  std::vector<const GgufTensorInfo*> by_offset;
  for (GgufTensorInfo& t : tensors_) {
    if (t.offset > data_size || t.n_bytes > data_size - t.offset)
      throw GgufError(fmt::format("tensor '{}': data [{}, {}) lies outside the {}-byte data section (truncated file?)",
                                  t.name, t.offset, t.offset + t.n_bytes, data_size));
    t.data = bytes_.data() + data_offset_ + t.offset;
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo* a = by_offset[i - 1];
    const GgufTensorInfo* b = by_offset[i];
    if (a->offset + a->n_bytes > b->offset)
      throw GgufError(fmt::format("tensor '{}' [{}, {}) overlaps tensor '{}' at {}", a->name, a->offset,
                                  a->offset + a->n_bytes, b->name, b->offset));
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const GgufKV& kv : kvs_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const GgufTensorInfo& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace pl
