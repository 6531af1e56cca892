#include "core/env.h"

#include <cstdlib>
#include <string_view>

namespace pl {

namespace {

std::string_view trim(std::string_view s, std::string_view chars) {
  const size_t b = s.find_first_not_of(chars);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(chars) - b + 1);
}

}  // namespace

std::optional<std::string> env_var(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  constexpr std::string_view kSpace = " \t\r\n";
  const std::string_view s = trim(trim(trim(v, kSpace), "\"'"), kSpace);
  if (s.empty()) return std::nullopt;
  return std::string(s);
}

}  // namespace pl
