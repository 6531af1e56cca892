// The blob half of the store: content-addressed files under <root>/blobs, and
// the file plumbing (temp file + fsync + rename) every write goes through.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "store/internal.h"
#include "store/sha256.h"
#include "store/store.h"

namespace fs = std::filesystem;

namespace pl::store {
namespace detail {

namespace {
bool is_lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}
}  // namespace

std::string normalize_digest(std::string_view digest) {
  std::string d(digest);
  if (d.size() == 71 && (d.starts_with("sha256:") || d.starts_with("sha256-"))) {
    std::string hex = d.substr(7);
    for (char& c : hex) c = (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
    if (is_lower_hex(hex)) return "sha256:" + hex;
  }
  fail("invalid digest '{}': expected sha256:<64 hex digits>", digest.substr(0, 100));
}

TempFile::TempFile(const fs::path& target) {
  fs::create_directories(target.parent_path());
  std::string tmpl = (target.parent_path() / fmt::format(".{}.tmp-XXXXXX", target.filename().string())).string();
  fd = ::mkstemp(tmpl.data());
  if (fd < 0) fail("cannot create a temp file in '{}': {}", target.parent_path().string(), std::strerror(errno));
  path = tmpl;
}

TempFile::~TempFile() {
  if (fd >= 0) ::close(fd);
  if (!committed) {
    std::error_code ec;
    fs::remove(path, ec);
  }
}

void TempFile::write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("cannot write '{}': {}", path.string(), std::strerror(errno));
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void TempFile::commit(const fs::path& target) {
  // Readable by all like Ollama's files (mkstemp makes 0600), and on disk before
  // the rename publishes it, so a crash leaves the old file or the whole new one.
  if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0)
    fail("cannot write '{}': {}", path.string(), std::strerror(errno));
  int rc = ::close(fd);
  fd = -1;
  if (rc != 0) fail("cannot write '{}': {}", path.string(), std::strerror(errno));
  std::error_code ec;
  fs::rename(path, target, ec);
  if (ec) fail("cannot rename '{}' to '{}': {}", path.string(), target.string(), ec.message());
  committed = true;
}

void write_file_atomic(const fs::path& target, std::string_view bytes) {
  TempFile t(target);
  t.write(bytes.data(), bytes.size());
  t.commit(target);
}

std::string read_file_limited(const fs::path& p, uint64_t max_bytes) {
  std::error_code ec;
  uint64_t size = fs::file_size(p, ec);
  if (ec) fail("cannot read '{}': {}", p.string(), ec.message());
  if (size > max_bytes) fail("'{}' is {} bytes, more than the {} expected", p.string(), size, max_bytes);
  std::ifstream in(p, std::ios::binary);
  if (!in) fail("cannot open '{}': {}", p.string(), std::strerror(errno));
  std::string s(size, '\0');
  in.read(s.data(), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in.gcount()) != size) fail("cannot read '{}'", p.string());
  return s;
}

std::set<std::string> digests_in(std::string_view text) {
  std::set<std::string> out;
  for (size_t pos = text.find("sha256"); pos != std::string_view::npos; pos = text.find("sha256", pos + 1)) {
    std::string_view cand = text.substr(pos, 71);
    if (cand.size() == 71 && (cand[6] == ':' || cand[6] == '-') && is_lower_hex(cand.substr(7)))
      out.insert("sha256:" + std::string(cand.substr(7)));
  }
  return out;
}

std::set<std::string> referenced_digests(const fs::path& manifests_dir) {
  std::set<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(manifests_dir, ec)) return out;
  for (fs::recursive_directory_iterator it(manifests_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string text;
    try {
      text = read_file_limited(it->path(), 64 << 20);
    } catch (const Error&) {
      continue;
    }
    out.merge(digests_in(text));
  }
  // An unreadable manifest directory must not be mistaken for "no references".
  if (ec) fail("cannot scan '{}': {}", manifests_dir.string(), ec.message());
  return out;
}

}  // namespace detail

// ---------------------------------------------------------------------------

struct BlobWriter::Impl {
  fs::path blobs_dir;
  detail::TempFile tmp;
  Sha256 hash;
  uint64_t n_bytes = 0;
  bool done = false;
  explicit Impl(const fs::path& dir) : blobs_dir(dir), tmp(dir / "upload") {}
};

BlobWriter::BlobWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BlobWriter::~BlobWriter() = default;
BlobWriter::BlobWriter(BlobWriter&&) noexcept = default;

void BlobWriter::write(const void* data, size_t n) {
  PL_CHECK(impl_ && !impl_->done, "BlobWriter::write after commit");
  impl_->hash.update(data, n);
  impl_->tmp.write(data, n);
  impl_->n_bytes += n;
}

void BlobWriter::commit(std::string_view digest) {
  PL_CHECK(impl_ && !impl_->done, "BlobWriter::commit called twice");
  impl_->done = true;
  const std::string want = detail::normalize_digest(digest);
  const std::string got = "sha256:" + impl_->hash.hex_digest();
  if (got != want) fail("digest mismatch: expected {}, got {}", want, got);
  impl_->tmp.commit(impl_->blobs_dir / ("sha256-" + want.substr(7)));
}

uint64_t BlobWriter::n_bytes() const { return impl_->n_bytes; }

BlobWriter Store::begin_blob() { return BlobWriter(std::make_unique<BlobWriter::Impl>(root_ / "blobs")); }

fs::path Store::blob_path(std::string_view digest) const {
  return root_ / "blobs" / ("sha256-" + detail::normalize_digest(digest).substr(7));
}

bool Store::has_blob(std::string_view digest) const {
  std::error_code ec;
  return fs::is_regular_file(blob_path(digest), ec);
}

void Store::put_blob(std::string_view digest, const fs::path& src) {
  const std::string want = detail::normalize_digest(digest);
  std::ifstream in(src, std::ios::binary);
  if (!in) fail("cannot open '{}': {}", src.string(), std::strerror(errno));
  // Even when the blob exists the bytes are checked, so a wrong digest is
  // reported as such rather than silently accepted.
  BlobWriter w = begin_blob();
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) w.write(buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) fail("error reading '{}'", src.string());
  w.commit(want);
}

std::string Store::import_file(const fs::path& src) {
  // Hash first: re-creating a model from the same multi-GB file then costs a
  // read, not a second copy.
  const std::string digest = "sha256:" + sha256_file_hex(src);
  if (!has_blob(digest)) put_blob(digest, src);
  return digest;
}

size_t Store::prune_blobs() {
  const std::set<std::string> keep = detail::referenced_digests(root_ / "manifests");
  size_t n_removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(root_ / "blobs", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with("sha256-")) continue;  // temp files of writes in flight, or not ours
    std::string digest;
    try {
      digest = detail::normalize_digest(name);
    } catch (const Error&) {
      continue;
    }
    if (!keep.contains(digest) && fs::remove(it->path(), ec)) ++n_removed;
  }
  return n_removed;
}

}  // namespace pl::store
