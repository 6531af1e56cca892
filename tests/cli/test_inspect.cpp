#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"

using namespace pl::test;

TEST(CliInspect, TextShowsMetadataAndTensorTable) {
  REQUIRE_TESTDATA();
  CommandResult r = run_command(kBin + " inspect " + (kTestdata / "models/stories260K.gguf").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("GGUF v3, "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("48 tensors"), std::string::npos);
  // A metadata line: key, type, value.
  EXPECT_NE(r.out.find("llama.block_count"), std::string::npos);
  EXPECT_NE(r.out.find("general.architecture"), std::string::npos);
  EXPECT_NE(r.out.find("\"llama\""), std::string::npos);
  // Long arrays abbreviated.
  EXPECT_NE(r.out.find("... (512 items)]"), std::string::npos);
  // The tensor table: name, dtype, shape, offset, bytes.
  EXPECT_NE(r.out.find("token_embd.weight"), std::string::npos);
  EXPECT_NE(r.out.find("64 x 512"), std::string::npos);
  EXPECT_NE(r.out.find("131072"), std::string::npos);  // 64 * 512 * 4 bytes
}

TEST(CliInspect, JsonIsMachineReadable) {
  REQUIRE_TESTDATA();
  CommandResult r = run_command(kBin + " inspect --json " + (kTestdata / "models/stories260K.gguf").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["version"], 3);
  EXPECT_EQ(j["metadata"]["llama.embedding_length"]["value"], 64);
  EXPECT_EQ(j["metadata"]["llama.embedding_length"]["type"], "UINT32");
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"]["n_items"], 512);
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"]["value"].size(), 8u);  // abbreviated
  ASSERT_EQ(j["tensors"].size(), 48u);
  EXPECT_EQ(j["tensors"][0]["name"], "token_embd.weight");
  EXPECT_EQ(j["tensors"][0]["type"], "F32");
  EXPECT_EQ(j["tensors"][0]["shape"], nlohmann::json::array({64, 512}));
  EXPECT_EQ(j["tensors"][0]["bytes"], 131072);

  r = run_command(kBin + " inspect --json --full-arrays " + (kTestdata / "models/stories260K.gguf").string());
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out)["metadata"]["tokenizer.ggml.tokens"]["value"].size(), 512u);
}

TEST(CliInspect, BadFileIsAClearError) {
  TempDir dir;
  {
    std::ofstream f(dir.file("bad.gguf"), std::ios::binary);
    f << "GGUF\x03";
  }
  CommandResult r = run_command(kBin + " inspect " + dir.file("bad.gguf"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("Error: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
  r = run_command(kBin + " inspect /no/such/file.gguf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/no/such/file.gguf"), std::string::npos) << r.err;
}
