// Paths and loaders shared by the chat template tests.
#pragma once

#include <ctime>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "chat/jinja.h"
#include "test_util.h"

namespace pl::chat::test {

inline const std::filesystem::path kDir = std::filesystem::path(PARALLAMA_SOURCE_DIR) / "tests" / "chat";

inline std::string read(const std::filesystem::path& rel) {
  const auto p = kDir / rel;
  EXPECT_TRUE(std::filesystem::exists(p)) << p;
  return pl::test::read_file(p);
}

inline nlohmann::ordered_json read_json(const std::filesystem::path& rel) { return nlohmann::ordered_json::parse(read(rel)); }

// strftime_now() in the tests: 2024-09-05 (Llama 3.2 prints "05 Sep 2024").
inline RenderOptions fixed_clock() {
  RenderOptions o;
  std::tm tm{};
  tm.tm_year = 2024 - 1900;
  tm.tm_mon = 8;
  tm.tm_mday = 5;
  o.now = tm;
  return o;
}

}  // namespace pl::chat::test
