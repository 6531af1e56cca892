// Errors and invariant checks.
//
// Bad input (files, requests, environment) throws pl::Error with a message that
// says what is wrong and where; it is caught at a boundary (CLI, HTTP handler)
// and turned into an exit code or a status. Broken invariants use PL_CHECK,
// which is always on (never compiled out like assert) and aborts with the
// expression and a message.
#pragma once

#include <fmt/core.h>

#include <stdexcept>
#include <string>

namespace pl {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

[[noreturn]] void check_failed(const char* expr, const char* file, int line, const std::string& msg);

}  // namespace pl

#define PL_CHECK(cond, ...)                                                                 \
  do {                                                                                      \
    if (!(cond)) [[unlikely]]                                                               \
      ::pl::check_failed(#cond, __FILE__, __LINE__, ::fmt::format("" __VA_ARGS__));         \
  } while (0)
