#include <gtest/gtest.h>

#include "gguf/gguf.h"
#include "model/file_type.h"
#include "test_util.h"

using namespace pl;
using namespace pl::test;

namespace {

const std::string kSmall = " --n-embd 64 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 96 ";

}  // namespace

TEST(CliMakeModel, WritesTheRequestedShape) {
  TempDir dir;
  CommandResult r = run_command(kBin + " make-model -o " + dir.file("m.gguf") +
                                " --arch qwen2 --n-embd 128 --n-layer 3 --n-head 8 --n-head-kv 2 --n-ff 320 "
                                "--n-ctx 1024 --type f16 --seed 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  GgufFile f = GgufFile::open(dir.file("m.gguf"));
  EXPECT_EQ(f.get<std::string>("general.architecture"), "qwen2");
  EXPECT_EQ(f.get<uint32_t>("qwen2.embedding_length"), 128u);
  EXPECT_EQ(f.get<uint32_t>("qwen2.block_count"), 3u);
  EXPECT_EQ(f.get<uint32_t>("qwen2.attention.head_count_kv"), 2u);
  EXPECT_EQ(f.get<uint32_t>("qwen2.context_length"), 1024u);
  EXPECT_EQ(f.get<uint32_t>("general.file_type"), 1u);
  EXPECT_EQ(f.find_tensor("blk.2.attn_k.weight")->shape, (std::vector<uint64_t>{128, 32}));
  EXPECT_EQ(f.find_tensor("blk.2.attn_k.weight")->type, DType::F16);
  EXPECT_EQ(f.find_tensor("blk.2.attn_k.bias")->type, DType::F32);
  EXPECT_EQ(f.find_tensor("blk.0.ffn_down.weight")->shape, (std::vector<uint64_t>{320, 128}));
  EXPECT_EQ(f.tensors().size(), 3u + 3u * 12u);
}

TEST(CliMakeModel, DeterministicForASeed) {
  TempDir dir;
  for (const char* name : {"a", "b", "c"}) {
    std::string seed = std::string(name) == "c" ? "2" : "1";
    CommandResult r = run_command(kBin + " make-model -o " + dir.file(name) + kSmall + "--type q4_0 --seed " + seed +
                                  (std::string(name) == "b" ? " --threads 1" : " --threads 2"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  EXPECT_EQ(read_file(dir.file("a")), read_file(dir.file("b")));  // thread count does not matter
  EXPECT_NE(read_file(dir.file("a")), read_file(dir.file("c")));
}

TEST(CliMakeModel, CopiesARealVocabulary) {
  REQUIRE_TESTDATA();
  TempDir dir;
  CommandResult r = run_command(kBin + " make-model -o " + dir.file("m.gguf") + kSmall + "--vocab " +
                                (kTestdata / "vocab/ggml-vocab-gpt-2.gguf").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  GgufFile f = GgufFile::open(dir.file("m.gguf"));
  EXPECT_EQ(f.get<std::string>("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.get<std::string>("tokenizer.ggml.pre"), "gpt-2");
  EXPECT_EQ(f.find_tensor("token_embd.weight")->shape, (std::vector<uint64_t>{64, 50257}));
}

TEST(CliMakeModel, QuantizedMixFollowsThePolicy) {
  TempDir dir;
  CommandResult r = run_command(kBin + " make-model -o " + dir.file("m.gguf") +
                                " --n-embd 256 --n-layer 8 --n-head 4 --n-head-kv 4 --n-ff 512 --type q4_k_m");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  GgufFile f = GgufFile::open(dir.file("m.gguf"));
  EXPECT_EQ(f.get<uint32_t>("general.file_type"), 15u);
  EXPECT_EQ(f.find_tensor("blk.3.attn_q.weight")->type, DType::Q4_K);
  EXPECT_EQ(f.find_tensor("output.weight")->type, DType::Q6_K);
  EXPECT_EQ(f.find_tensor("blk.0.attn_v.weight")->type, DType::Q6_K);  // first eighth
  EXPECT_EQ(f.find_tensor("blk.7.ffn_down.weight")->type, DType::Q6_K);  // last eighth
  EXPECT_EQ(f.find_tensor("blk.2.attn_v.weight")->type, DType::Q4_K);
  EXPECT_EQ(f.find_tensor("blk.3.attn_v.weight")->type, DType::Q6_K);  // (3 - 1) % 3 == 2
  EXPECT_EQ(f.find_tensor("blk.3.attn_norm.weight")->type, DType::F32);
}

TEST(CliMakeModel, BadOptionsAreClearErrors) {
  TempDir dir;
  struct Case {
    std::string args, message;
  };
  for (const Case& c : {Case{"--arch gptj", "unsupported --arch 'gptj'"},
                        Case{"--type q3_xx", "unknown --type 'q3_xx'"},
                        Case{"--n-head 4 --n-head-kv 3", "must be a multiple of --n-head-kv 3"},
                        Case{"--n-embd 0", "--n-embd must be positive"},
                        Case{"--n-embd 66 --n-head 4", "not divisible by --n-head"},
                        Case{"--vocab /no/such/vocab.gguf", "/no/such/vocab.gguf"},
                        Case{"--rope-scaling yarn", "unknown --rope-scaling 'yarn'"}}) {
    CommandResult r = run_command(kBin + " make-model -o " + dir.file("m.gguf") + " " + c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << ": " << r.err;
  }
  CommandResult r = run_command(kBin + " make-model --n-embd 64");  // no -o
  EXPECT_NE(r.exit_code, 0);
}

TEST(CliQuantize, ConvertsAndKeepsMetadata) {
  TempDir dir;
  ASSERT_EQ(run_command(kBin + " make-model -o " + dir.file("f32.gguf") + kSmall).exit_code, 0);
  CommandResult r = run_command(kBin + " quantize " + dir.file("f32.gguf") + " " + dir.file("q8.gguf") + " q8_0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  GgufFile in = GgufFile::open(dir.file("f32.gguf")), out = GgufFile::open(dir.file("q8.gguf"));
  EXPECT_EQ(out.get<uint32_t>("general.file_type"), 7u);
  EXPECT_EQ(out.find_tensor("blk.1.ffn_up.weight")->type, DType::Q8_0);
  EXPECT_EQ(out.find_tensor("blk.1.ffn_norm.weight")->type, DType::F32);
  EXPECT_EQ(out.get_array<std::string>("tokenizer.ggml.tokens"), in.get_array<std::string>("tokenizer.ggml.tokens"));
  r = run_command(kBin + " quantize " + dir.file("f32.gguf") + " " + dir.file("x.gguf") + " q9_9");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown quantization type 'q9_9'"), std::string::npos) << r.err;
}

TEST(FileTypePolicy, FallsBackWhenRowsDoNotFitTheBlock) {
  FileType q4km = *file_type_from_name("Q4_K_M");
  EXPECT_EQ(tensor_type_for(q4km, "blk.5.attn_q.weight", 2, 256, 22), DType::Q4_K);
  EXPECT_EQ(tensor_type_for(q4km, "blk.5.attn_q.weight", 2, 96, 22), DType::Q5_0);  // 96 % 256 != 0
  EXPECT_EQ(tensor_type_for(q4km, "blk.5.attn_q.weight", 2, 72, 22), DType::F16);   // 72 % 32 != 0
  EXPECT_EQ(tensor_type_for(q4km, "output.weight", 2, 96, 22), DType::Q8_0);        // Q6_K -> Q8_0
  EXPECT_EQ(tensor_type_for(q4km, "blk.5.attn_norm.weight", 1, 256, 22), DType::F32);
  FileType q8 = *file_type_from_name("q8_0");
  EXPECT_EQ(tensor_type_for(q8, "output.weight", 2, 256, 22), DType::Q8_0);
  EXPECT_FALSE(file_type_from_name("q2_k").has_value());
}
