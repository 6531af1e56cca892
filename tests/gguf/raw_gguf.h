// Builds GGUF bytes field by field, so tests can write files that the writer
// would refuse to produce: wrong counts, bad types, hostile offsets.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace pl::test {

struct RawGguf {
  std::vector<uint8_t> b;

  template <class T>
  RawGguf& pod(T x) {
    const auto* p = reinterpret_cast<const uint8_t*>(&x);
    b.insert(b.end(), p, p + sizeof(T));
    return *this;
  }
  RawGguf& u8(uint8_t x) { return pod(x); }
  RawGguf& u32(uint32_t x) { return pod(x); }
  RawGguf& u64(uint64_t x) { return pod(x); }
  RawGguf& str(const std::string& s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  RawGguf& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    return u32(0x46554747).u32(version).u64(n_tensors).u64(n_kv);
  }
  RawGguf& kv_u32(const std::string& key, uint32_t v) { return str(key).u32(4).u32(v); }
  RawGguf& kv_str(const std::string& key, const std::string& v) { return str(key).u32(8).str(v); }
  // A tensor info: name, dims, type, offset.
  RawGguf& tensor(const std::string& name, const std::vector<uint64_t>& dims, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type).u64(offset);
  }
  RawGguf& pad(size_t alignment) {
    while (b.size() % alignment != 0) b.push_back(0);
    return *this;
  }
  RawGguf& zeros(size_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
};

}  // namespace pl::test
