#include <gtest/gtest.h>

#include <random>
#include <string>

#include "store/store.h"
#include "test_util.h"

namespace fs = std::filesystem;
using pl::store::ModelName;
using pl::test::error_of;

TEST(ModelName, ResolvesLikeOllama) {
  ModelName a = ModelName::parse("llama3.2");
  EXPECT_EQ(a.host, "registry.ollama.ai");
  EXPECT_EQ(a.ns, "library");
  EXPECT_EQ(a.model, "llama3.2");
  EXPECT_EQ(a.tag, "latest");
  EXPECT_EQ(a.display(), "llama3.2:latest");
  EXPECT_EQ(a.manifest_path(), fs::path("registry.ollama.ai/library/llama3.2/latest"));

  ModelName b = ModelName::parse("me/x:1");
  EXPECT_EQ(b.ns, "me");
  EXPECT_EQ(b.model, "x");
  EXPECT_EQ(b.tag, "1");
  EXPECT_EQ(b.display(), "me/x:1");

  ModelName c = ModelName::parse("localhost:5000/team/qwen2.5-coder:7b-instruct_q4_K_M");
  EXPECT_EQ(c.host, "localhost:5000");
  EXPECT_EQ(c.ns, "team");
  EXPECT_EQ(c.model, "qwen2.5-coder");
  EXPECT_EQ(c.tag, "7b-instruct_q4_K_M");
  EXPECT_EQ(c.display(), "localhost:5000/team/qwen2.5-coder:7b-instruct_q4_K_M");
  EXPECT_EQ(c.manifest_path(), fs::path("localhost:5000/team/qwen2.5-coder/7b-instruct_q4_K_M"));

  // The full form of a default name displays short, and compares equal to it.
  EXPECT_EQ(ModelName::parse("registry.ollama.ai/library/llama3.2:latest").display(), "llama3.2:latest");
  EXPECT_EQ(ModelName::parse("registry.ollama.ai/library/llama3.2:latest"), ModelName::parse("llama3.2"));
  EXPECT_EQ(ModelName::parse("registry.ollama.ai/me/x:1").display(), "me/x:1");
  EXPECT_EQ(ModelName::parse("other.io/library/x").display(), "other.io/library/x:latest");
  EXPECT_EQ(ModelName::parse("x:_tag").tag, "_tag");
}

TEST(ModelName, RejectsInvalidAndEscapingNames) {
  const char* bad[] = {
      "",           ":",          "x:",          ":tag",         "..",          ".",            "../x",
      "x/..",       "x/../y",     "/x",          "x/",           "a//b",        "a/b/c/d",      "../../etc/passwd",
      "/etc/passwd", "x:..",      "x:.",         "x:../../y",    ".hidden",     "-x",           "x y",
      "x\\y",       "..\\x",      "x:t/..",      "a..b",         "x:a..b",      "~/x",          "%2e%2e",
      "x\ty",       "x\ny",       "modèle",      "x@sha256:00",  "ns/.x",       "host/-ns/x",   "..:80/ns/x",
      "x:-t",       "x:.t",       "x:t:",        "x::t",         "./x",         "x/.",          "a/b/c/",
  };
  for (const char* s : bad) {
    SCOPED_TRACE(s);
    std::string msg = error_of([&] { ModelName::parse(s); });
    EXPECT_NE(msg.find("invalid model name"), std::string::npos) << msg;
  }
  EXPECT_EQ(error_of([] { ModelName::parse(std::string("x\0y", 3)); }),
            "invalid model name 'x\\x00y': control character in model");
  EXPECT_NE(error_of([] { ModelName::parse(std::string(81, 'a')); }).find("longer than 80"), std::string::npos);
  ModelName::parse(std::string(80, 'a'));  // the limit itself is fine
  EXPECT_NE(error_of([] { ModelName::parse("x:" + std::string(81, 't')); }).find("tag"), std::string::npos);
}

// Whatever parse accepts stays four plain components under the manifests root.
TEST(ModelName, NoAcceptedNameEscapesTheStore) {
  const std::string alphabet("ab9._-/:\\.\0~ %", 14);
  std::mt19937 rng(42);
  const fs::path root = "/store/manifests";
  int n_accepted = 0;
  for (int i = 0; i < 50000; ++i) {
    std::string s(1 + rng() % 12, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    ModelName n;
    try {
      n = ModelName::parse(s);
    } catch (const pl::Error&) {
      continue;
    }
    ++n_accepted;
    SCOPED_TRACE(s);
    fs::path rel = n.manifest_path();
    ASSERT_TRUE(rel.is_relative());
    int n_parts = 0;
    for (const fs::path& part : rel) {
      ++n_parts;
      ASSERT_NE(part, ".");
      ASSERT_NE(part, "..");
      ASSERT_FALSE(part.empty());
      ASSERT_EQ(part.string().find_first_of("/\\~%"), std::string::npos);
    }
    ASSERT_EQ(n_parts, 4);
    fs::path full = (root / rel).lexically_normal();
    ASSERT_EQ(full.string().rfind(root.string() + "/", 0), 0u);
    // Parsing the display form gives the same name back.
    ASSERT_EQ(ModelName::parse(n.display()), n);
  }
  EXPECT_GT(n_accepted, 500);
}
