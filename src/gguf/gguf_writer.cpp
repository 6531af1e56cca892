#include "gguf/gguf_writer.h"

#include <cstdio>
#include <cstring>
#include <filesystem>

namespace pl {
namespace {

// Appends to a byte vector.
struct VectorSink {
  std::vector<uint8_t>& out;
  void put(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  }
  uint64_t pos() const { return out.size(); }
};

// Streams to a FILE*, so multi-GB models never need a second copy in memory.
struct FileSink {
  std::FILE* f;
  const std::string& path;
  uint64_t written = 0;
  void put(const void* p, size_t n) {
    if (n != 0 && std::fwrite(p, 1, n, f) != n) fail("write to {} failed", path);
    written += n;
  }
  uint64_t pos() const { return written; }
};

template <class Sink, class T>
void put_pod(Sink& s, T x) {
  s.put(&x, sizeof(T));
}

template <class Sink>
void put_string(Sink& s, const std::string& str) {
  put_pod<Sink, uint64_t>(s, str.size());
  s.put(str.data(), str.size());
}

template <class Sink>
void put_value(Sink& s, const GgufValue& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          put_string(s, x);
        } else if constexpr (std::is_same_v<T, GgufArray>) {
          put_pod<Sink, uint32_t>(s, static_cast<uint32_t>(x.elem_type));
          put_pod<Sink, uint64_t>(s, x.items.size());
          for (const GgufValue& item : x.items) {
            if (item.type() != x.elem_type)
              fail("array element of type {} in an array of {}", gguf_type_name(item.type()),
                   gguf_type_name(x.elem_type));
            put_value(s, item);
          }
        } else if constexpr (std::is_same_v<T, bool>) {
          put_pod<Sink, uint8_t>(s, x ? 1 : 0);
        } else {
          put_pod<Sink, T>(s, x);
        }
      },
      v.v);
}

template <class Sink>
void pad_to(Sink& s, uint64_t alignment) {
  static const uint8_t zeros[64] = {};
  uint64_t n = (alignment - s.pos() % alignment) % alignment;
  while (n > 0) {
    uint64_t k = std::min<uint64_t>(n, sizeof zeros);
    s.put(zeros, k);
    n -= k;
  }
}

}  // namespace

GgufWriter GgufWriter::from_file(const GgufFile& f) {
  GgufWriter w;
  w.version_ = f.version();
  w.kvs_ = f.metadata();
  for (const GgufTensorInfo& t : f.tensors()) w.add_tensor(t.name, t.type, t.shape, t.bytes());
  return w;
}

void GgufWriter::set(std::string key, GgufValue value) {
  for (GgufKV& kv : kvs_) {
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  }
  kvs_.push_back({std::move(key), std::move(value)});
}

bool GgufWriter::remove(std::string_view key) {
  for (auto it = kvs_.begin(); it != kvs_.end(); ++it) {
    if (it->key == key) {
      kvs_.erase(it);
      return true;
    }
  }
  return false;
}

void GgufWriter::add_tensor(std::string name, DType type, std::vector<uint64_t> shape, std::span<const uint8_t> data) {
  DTypeInfo info = dtype_info(type);
  if (shape.empty() || shape.size() > 4) fail("tensor '{}': {} dimensions (expected 1 to 4)", name, shape.size());
  uint64_t n = 1;
  for (uint64_t d : shape) {
    if (d == 0) fail("tensor '{}': zero dimension", name);
    n *= d;
  }
  if (shape[0] % info.block_elems != 0)
    fail("tensor '{}': row of {} elements is not a multiple of the {} block size {}", name, shape[0], info.name,
         info.block_elems);
  uint64_t expect = n / info.block_elems * info.block_bytes;
  if (data.size() != expect) fail("tensor '{}': expected {} bytes of {} data, got {}", name, expect, info.name, data.size());
  for (const Tensor& t : tensors_)
    if (t.name == name) fail("duplicate tensor name '{}'", name);
  tensors_.push_back({std::move(name), type, std::move(shape), data, SIZE_MAX});
}

void GgufWriter::add_tensor(std::string name, DType type, std::vector<uint64_t> shape, std::vector<uint8_t> data) {
  owned_.push_back(std::move(data));
  add_tensor(std::move(name), type, std::move(shape), std::span<const uint8_t>(owned_.back()));
  tensors_.back().owned_index = owned_.size() - 1;
}

uint32_t GgufWriter::alignment() const {
  for (const GgufKV& kv : kvs_)
    if (kv.key == "general.alignment") return gguf_convert<uint32_t>(kv.value, kv.key);
  return GgufFile::kDefaultAlignment;
}

template <class Sink>
void GgufWriter::emit(Sink& s) const {
  const uint64_t align = alignment();
  put_pod<Sink, uint32_t>(s, 0x46554747);
  put_pod<Sink, uint32_t>(s, version_);
  put_pod<Sink, uint64_t>(s, tensors_.size());
  put_pod<Sink, uint64_t>(s, kvs_.size());
  for (const GgufKV& kv : kvs_) {
    put_string(s, kv.key);
    put_pod<Sink, uint32_t>(s, static_cast<uint32_t>(kv.value.type()));
    put_value(s, kv.value);
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    put_string(s, t.name);
    put_pod<Sink, uint32_t>(s, static_cast<uint32_t>(t.shape.size()));
    for (uint64_t d : t.shape) put_pod<Sink, uint64_t>(s, d);
    put_pod<Sink, uint32_t>(s, static_cast<uint32_t>(t.type));
    put_pod<Sink, uint64_t>(s, offset);
    offset += (t.data.size() + align - 1) / align * align;
  }
  // A file without tensors ends right after its metadata (no padding), as the reference writers do.
  if (!tensors_.empty()) pad_to(s, align);
  for (const Tensor& t : tensors_) {
    s.put(t.data.data(), t.data.size());
    pad_to(s, align);
  }
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  std::vector<uint8_t> out;
  VectorSink s{out};
  emit(s);
  return out;
}

void check_output_path(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (path.empty()) fail("no output path given");
  if (fs::is_directory(path, ec) || path.back() == '/') fail("{} is a directory, not a file path", path);
  const fs::path dir = fs::path(path).parent_path();
  if (!dir.empty() && !fs::is_directory(dir, ec))
    fail("cannot write {}: the directory {} does not exist", path, dir.string());
}

void GgufWriter::write(const std::string& path) const {
  check_output_path(path);
  std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) fail("cannot create {}: {}", tmp, std::strerror(errno));
  try {
    FileSink s{f, tmp};
    emit(s);
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fclose(f) != 0) {
    std::remove(tmp.c_str());
    fail("write to {} failed", tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    fail("cannot rename {} to {}: {}", tmp, path, ec.message());
  }
}

}  // namespace pl
