// Helpers shared by the store's source files (not part of the module's API).
#pragma once

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>

namespace pl::store::detail {

// "sha256:<64 hex>" or "sha256-<64 hex>" -> "sha256:<64 lowercase hex>"; pl::Error otherwise.
// Only this form ever reaches a blob's file name.
std::string normalize_digest(std::string_view digest);

// A temp file next to `target` (same directory, so rename() is atomic), open for writing.
struct TempFile {
  std::filesystem::path path;
  int fd = -1;
  explicit TempFile(const std::filesystem::path& target);
  ~TempFile();  // closes and removes the file unless it was renamed into place
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  void write(const void* data, size_t n);
  // fsync, then rename over `target`.
  void commit(const std::filesystem::path& target);
  bool committed = false;
};

void write_file_atomic(const std::filesystem::path& target, std::string_view bytes);
// The whole file; pl::Error when it is missing, unreadable or larger than max_bytes.
std::string read_file_limited(const std::filesystem::path& p, uint64_t max_bytes);

// Every "sha256:<hex>" (or "sha256-<hex>") in `text`, as "sha256:<hex>".
std::set<std::string> digests_in(std::string_view text);
// Every digest that appears anywhere in any file under manifests_dir.
std::set<std::string> referenced_digests(const std::filesystem::path& manifests_dir);

}  // namespace pl::store::detail
