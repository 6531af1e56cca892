// Environment variables read as Ollama reads them: spaces, then quotes, trimmed.
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/env.h"

namespace pl {
namespace {

std::optional<std::string> read(const char* value) {
  ::setenv("PARALLAMA_TEST_ENV", value, 1);
  auto v = env_var("PARALLAMA_TEST_ENV");
  ::unsetenv("PARALLAMA_TEST_ENV");
  return v;
}

TEST(Env, TrimsSpacesAndQuotesAsOllama) {
  EXPECT_EQ(read("10"), "10");
  EXPECT_EQ(read(" 10 "), "10");
  EXPECT_EQ(read("\"10\""), "10");                  // OLLAMA_NUM_PARALLEL="10" in an env file
  EXPECT_EQ(read("'24h'"), "24h");                  // single quotes too
  EXPECT_EQ(read("  \" 127.0.0.1:11434 \"  "), "127.0.0.1:11434");
  EXPECT_EQ(read("/tmp/my models"), "/tmp/my models");  // inner spaces stay
  EXPECT_EQ(read("a\"b"), "a\"b");                  // inner quotes stay
}

TEST(Env, EmptyIsUnset) {
  ::unsetenv("PARALLAMA_TEST_ENV");
  EXPECT_EQ(env_var("PARALLAMA_TEST_ENV"), std::nullopt);
  EXPECT_EQ(read(""), std::nullopt);
  EXPECT_EQ(read("   "), std::nullopt);
  EXPECT_EQ(read("\"\""), std::nullopt);
  EXPECT_EQ(read(" ' ' "), std::nullopt);
}

}  // namespace
}  // namespace pl
