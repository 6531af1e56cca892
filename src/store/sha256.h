// SHA-256 over OpenSSL's libcrypto (EVP), streaming so multi-GB GGUF blobs are
// hashed in fixed-size chunks rather than read into memory.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace pl::store {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // 64 lowercase hex digits. The object is finished afterwards: no more updates.
  std::string hex_digest();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

std::string sha256_hex(std::string_view bytes);
// Throws pl::Error naming the path when it cannot be read.
std::string sha256_file_hex(const std::filesystem::path& path);

}  // namespace pl::store
