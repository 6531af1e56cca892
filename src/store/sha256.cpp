#include "store/sha256.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "core/error.h"

namespace pl::store {

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
  bool finished = false;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  PL_CHECK(ctx_->md != nullptr, "EVP_MD_CTX_new failed");
  PL_CHECK(EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) == 1, "EVP_DigestInit_ex(sha256) failed");
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, size_t n) {
  PL_CHECK(!ctx_->finished, "Sha256::update after hex_digest");
  if (n > 0) PL_CHECK(EVP_DigestUpdate(ctx_->md, data, n) == 1, "EVP_DigestUpdate failed");
}

std::string Sha256::hex_digest() {
  PL_CHECK(!ctx_->finished, "Sha256::hex_digest called twice");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  PL_CHECK(EVP_DigestFinal_ex(ctx_->md, md, &n) == 1 && n == 32, "EVP_DigestFinal_ex failed");
  ctx_->finished = true;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(64, '0');
  for (unsigned i = 0; i < 32; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(bytes);
  return h.hex_digest();
}

std::string sha256_file_hex(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '{}': {}", path.string(), std::strerror(errno));
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) fail("error reading '{}'", path.string());
  return h.hex_digest();
}

}  // namespace pl::store
