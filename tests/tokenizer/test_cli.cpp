// The CLI subcommands on testdata vocabs: `parallama tokenize`, `detokenize`
// and `import-tokenizer` (needs the parallama binary: `ninja parallama`).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>

#include <fmt/core.h>

#include "tok_test_util.h"

namespace pl::toktest {
namespace {

const std::string kBin = PARALLAMA_BIN;

struct CmdResult {
  int exit_code = -1;
  std::string out;
};

// Runs a command line through the shell; stdout captured, stderr appended after a marker.
CmdResult run(const std::string& cmd) {
  CmdResult r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Single-quoted for the shell (testdata paths hold no quotes).
std::string q(const fs::path& p) { return fmt::format("'{}'", p.string()); }

#define REQUIRE_BIN() \
  if (!fs::exists(kBin)) GTEST_SKIP() << kBin << " not built (ninja parallama)"

TEST(Cli, TokenizePrintsTheIdsOnOneLine) {
  REQUIRE_BIN();
  const fs::path gpt2 = kVocabDir / "ggml-vocab-gpt-2.gguf";
  const fs::path spm = kVocabDir / "ggml-vocab-llama-spm.gguf";
  if (!fs::exists(gpt2) || !fs::exists(spm)) GTEST_SKIP() << "vocab files not found in " << kVocabDir;
  CmdResult r = run(kBin + " tokenize -m " + q(gpt2) + " 'Hello world'");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "15496 995\n");
  r = run(kBin + " tokenize -m " + q(spm) + " 'Hello world'");
  EXPECT_EQ(r.out, "1 15043 3186\n");  // the model adds BOS
  r = run(kBin + " tokenize -m " + q(spm) + " --no-bos 'Hello world'");
  EXPECT_EQ(r.out, "15043 3186\n");
  r = run(kBin + " tokenize -m " + q(spm) + " --no-bos --parse-special '</s>'");
  EXPECT_EQ(r.out, "2\n");
  r = run(fmt::format("printf 'Hello world' | {} tokenize -m {} --file -", kBin, q(gpt2)));
  EXPECT_EQ(r.out, "15496 995\n");

  // Every golden string of the gpt-2 pair, through the CLI, via --file.
  const auto inputs = read_inp(kVocabDir / "ggml-vocab-gpt-2.gguf.inp");
  const auto expected = read_out(kVocabDir / "ggml-vocab-gpt-2.gguf.out");
  ASSERT_EQ(inputs.size(), expected.size());
  const fs::path tmp = fs::temp_directory_path() / ("pl_tok_cli_" + std::to_string(::getpid()) + ".txt");
  for (size_t i = 0; i < inputs.size(); i += 5) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(inputs[i].data(), 1, inputs[i].size(), f);
    std::fclose(f);
    r = run(kBin + " tokenize -m " + q(gpt2) + " --file " + q(tmp));
    std::string want = ids_str(expected[i]);
    if (!want.empty()) want.erase(0, 1);
    EXPECT_EQ(r.out, want + "\n") << "string " << i;
  }
  fs::remove(tmp);
}

TEST(Cli, DetokenizeAndErrors) {
  REQUIRE_BIN();
  const fs::path spm = kVocabDir / "ggml-vocab-llama-spm.gguf";
  if (!fs::exists(spm)) GTEST_SKIP() << spm << " not found";
  CmdResult r = run(kBin + " detokenize -m " + q(spm) + " 1 15043 3186");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "Hello world\n");
  r = run(kBin + " detokenize -m " + q(spm) + " --special 1,15043,3186");
  EXPECT_EQ(r.out, "<s> Hello world\n");
  r = run(kBin + " detokenize -m " + q(spm) + " 1 32000");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("out of range"), std::string::npos) << r.out;
  r = run(kBin + " detokenize -m " + q(spm) + " 1 x2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("'x2' is not a token id"), std::string::npos) << r.out;
  r = run(kBin + " tokenize -m " + q(spm));
  EXPECT_EQ(r.exit_code, 1);
  r = run(kBin + " tokenize -m /nonexistent/model.gguf hi");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("/nonexistent/model.gguf"), std::string::npos) << r.out;
}

TEST(Cli, ImportTokenizerWritesAVocabOnlyGguf) {
  REQUIRE_BIN();
  const fs::path dir = kVocabDir / "llama3.2-bpe";
  if (!fs::exists(dir)) GTEST_SKIP() << dir << " not found";
  const fs::path out = fs::temp_directory_path() / ("pl_tok_cli_l3_" + std::to_string(::getpid()) + ".gguf");
  CmdResult r = run(kBin + " import-tokenizer --encoder " + q(dir / "encoder.json") + " --merges " + q(dir / "vocab.bpe") +
              " --pre llama-bpe --llama3-specials -o " + q(out));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("128256 tokens"), std::string::npos) << r.out;
  {
    const GgufFile f = GgufFile::open(out.string());
    EXPECT_TRUE(f.tensors().empty());
    EXPECT_EQ(f.get<std::string>("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(f.get<uint32_t>("tokenizer.ggml.bos_token_id"), 128000u);
  }
  r = run(kBin + " tokenize -m " + q(out) + " --parse-special '<|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|>'");
  EXPECT_EQ(r.out, "128000 128006 882 128007 271 15339 128009\n");
  r = run(kBin + " import-tokenizer --encoder " + q(dir / "encoder.json") + " --merges " + q(dir / "vocab.bpe") +
          " --pre not-a-pre -o " + q(out));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("not-a-pre"), std::string::npos) << r.out;
  fs::remove(out);
}

}  // namespace
}  // namespace pl::toktest
