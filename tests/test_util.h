// Small helpers shared by the test binaries.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <ctime>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"

namespace pl::test {

inline const std::filesystem::path kTestdata = PARALLAMA_TESTDATA;
inline const std::string kBin = PARALLAMA_BIN;

#define REQUIRE_TESTDATA()                                                                                      \
  if (!std::filesystem::exists(::pl::test::kTestdata)) GTEST_SKIP() << "shared testdata not found at "       \
                                                                    << ::pl::test::kTestdata

// CPU seconds this thread has used. Bounds on the cost of pathological inputs
// (quadratic loops) use it rather than wall time: a shared machine's steal time
// and the other tests ctest runs alongside do not count against them.
inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::vector<int32_t> read_ids(const std::filesystem::path& p) {
  std::istringstream in(read_file(p));
  std::vector<int32_t> ids;
  int32_t id;
  while (in >> id) ids.push_back(id);
  return ids;
}

// The message of the pl::Error that f throws; a test failure when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a pl::Error";
  return "(no error)";
}

struct CommandResult {
  int exit_code;
  std::string out;  // stdout only; stderr goes to err
  std::string err;
};

// Runs a shell command line, capturing stdout and stderr separately.
inline CommandResult run_command(const std::string& cmdline) {
  const std::string err_path =
      (std::filesystem::temp_directory_path() / ("pl_test_err_" + std::to_string(::getpid()))).string();
  std::string full = cmdline + " 2>" + err_path;
  CommandResult r{-1, "", ""};
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_file(err_path);
  std::filesystem::remove(err_path);
  return r;
}

// A fresh directory under /tmp, removed with the object.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/pl_test_XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace pl::test
