// Bad sizes, paths and files given to the model tools: each is a clear error
// (exit 1, a message naming the value or the file), never an abort, a hang,
// `std::bad_alloc` or a silent change of what was asked for.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "test_util.h"

using namespace pl;
using namespace pl::test;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The small default model (n_embd 64, 2 layers, context 2048) in dir.
std::string small_model(const TempDir& dir, const std::string& extra = "") {
  const std::string path = dir.file("m.gguf");
  CommandResult r = run_command(kBin + " make-model -o " + path + " " + extra);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return path;
}

// Runs the command with at most ~4 GB of address space, so that a size the
// machine cannot allocate fails the same way on any machine.
CommandResult run_limited(const std::string& args) { return run_command("ulimit -v 4000000; " + kBin + args); }

}  // namespace

TEST(CliRobustness, HugeContextIsAnErrorNamingTheSize) {
  TempDir dir;
  const std::string m = small_model(dir);
  CommandResult r = run_command(kBin + " generate -m " + m + " -p hi -n 1 -c 2147483647");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "context size 2147483647 is too large")) << r.err;
  r = run_command("timeout 20 " + kBin + " runner -m " + m + " --port 0 --ctx-size 2147483647");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "context size 2147483647 is too large")) << r.err;
}

TEST(CliRobustness, NegativeSizesAreRejected) {
  TempDir dir;
  const std::string m = small_model(dir);
  for (const char* args : {" -c -5", " -b -1", " -b 0", " -t -2", " -n -7"}) {
    CommandResult r = run_command(kBin + " generate -m " + m + " -p hi -n 1" + args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_TRUE(contains(r.err, "not in range")) << args << ": " << r.err;
  }
  CommandResult r = run_command(kBin + " logits -m " + m + " --tokens 1,2 -o " + dir.file("l.npy") + " --chunk -3");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.err, "--chunk")) << r.err;
}

TEST(CliRobustness, SizesThatCannotBeAllocatedSayHowManyBytes) {
  TempDir dir;
  const std::string m = small_model(dir);
  // 2 layers x 4 KV heads x 16 dims x 2 (K, V) x 2 bytes = 512 bytes a token.
  CommandResult r = run_limited(" generate -m " + m + " -p hi -n 1 -c 1000000000");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "cannot allocate the KV cache for a context of 1000000000 tokens: 512000000000 bytes"))
      << r.err;
  EXPECT_FALSE(contains(r.err, "bad_alloc")) << r.err;

  r = run_limited(" generate -m " + m + " -p hi -n 1 -b 2147483647");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "--batch-size 2147483647 is larger than the context (2048 tokens)")) << r.err;

  // A chunk longer than the tokens is one pass over all of them.
  r = run_limited(" logits -m " + m + " --tokens 1,2,3 -o " + dir.file("l.npy") + " --chunk 2147483647");
  EXPECT_EQ(r.exit_code, 0) << r.err;

  r = run_limited(" make-model -o " + dir.file("x.gguf") + " --n-ff 2147483647");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "--n-ff 2147483647 is too large")) << r.err;
  r = run_limited(" make-model -o " + dir.file("x.gguf") + " --n-layer 2147483647");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "--n-layer 2147483647 is too large (at most 65536)")) << r.err;
  r = run_limited(" make-model -o " + dir.file("x.gguf") + " --n-ff 100000000");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "cannot allocate tensor 'blk.0.ffn_gate.weight': 25600000000 bytes")) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.gguf")));
}

TEST(CliRobustness, ContextBeyondTheTrainedOneIsAWarning) {
  TempDir dir;
  const std::string m = small_model(dir, "--n-ctx 256");
  CommandResult r = run_command(kBin + " generate -m " + m + " -p hi -n 1 -c 512");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "warning: context size 512 is larger than the model's training context (256)")) << r.err;
  r = run_command(kBin + " generate -m " + m + " -p hi -n 1 -c 256");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(contains(r.err, "warning")) << r.err;
  // The default batch (512) shrinks to a smaller context instead of failing.
  r = run_command(kBin + " generate -m " + m + " -p hi -n 1 -c 64");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(CliRobustness, FifoAsModelFailsAtOnce) {
  TempDir dir;
  const std::string fifo = dir.file("p.gguf");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // `timeout` exits 124 if the command blocks opening the FIFO.
  const std::string quantize = " quantize " + fifo + " " + dir.file("o.gguf") + " q8_0";
  for (const std::string& cmd : {" inspect " + fifo, " generate -p hi -m " + fifo, quantize}) {
    CommandResult r = run_command("timeout 10 " + kBin + cmd);
    EXPECT_EQ(r.exit_code, 1) << cmd;
    EXPECT_TRUE(contains(r.err, fifo + " is not a regular file")) << cmd << ": " << r.err;
  }
}

TEST(CliRobustness, KQuantFallbackIsReported) {
  TempDir dir;
  CommandResult r = run_command(kBin + " make-model -o " + dir.file("k.gguf") + " --type q4_k");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "note: 15 of 16 matrices are Q5_0 instead of Q4_K: their rows (64, 128) are not a "
                              "multiple of 256\n"))
      << r.err;
  EXPECT_TRUE(contains(r.err, "note: 1 of 16 matrices is Q8_0 instead of Q6_K: its rows (64) are not a multiple of 256"))
      << r.err;

  ASSERT_EQ(run_command(kBin + " make-model -o " + dir.file("f.gguf") + " --n-embd 320 --n-ff 512").exit_code, 0);
  r = run_command(kBin + " quantize " + dir.file("f.gguf") + " " + dir.file("q.gguf") + " q4_k");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "note: 13 of 16 matrices are Q5_0 instead of Q4_K: their rows (320) are not a multiple "
                              "of 256"))
      << r.err;

  // Rows that fit: no note.
  r = run_command(kBin + " make-model -o " + dir.file("g.gguf") + " --n-embd 256 --n-ff 512 --type q4_k");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(contains(r.err, "note:")) << r.err;
}

TEST(CliRobustness, ErrorsNameTheFile) {
  TempDir dir;
  const std::string m = small_model(dir);
  GgufFile src = GgufFile::open(m);

  // A model without its vocabulary.
  GgufWriter no_vocab = GgufWriter::from_file(src);
  no_vocab.remove("tokenizer.ggml.tokens");
  no_vocab.write(dir.file("novocab.gguf"));
  CommandResult r = run_command(kBin + " generate -p hi -m " + dir.file("novocab.gguf"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, dir.file("novocab.gguf") + ": missing metadata key 'tokenizer.ggml.tokens'")) << r.err;

  // A tensor type quantize cannot read: IQ4_NL (32 elements in 18 bytes).
  GgufWriter iq;
  for (const GgufKV& kv : src.metadata()) iq.set(kv.key, kv.value);
  for (const GgufTensorInfo& t : src.tensors()) {
    if (t.name == "blk.0.attn_q.weight")
      iq.add_tensor(t.name, DType::IQ4_NL, t.shape, std::vector<uint8_t>(t.n_elements / 32 * 18));
    else
      iq.add_tensor(t.name, t.type, t.shape, t.bytes());
  }
  iq.write(dir.file("iq.gguf"));
  r = run_command(kBin + " quantize " + dir.file("iq.gguf") + " " + dir.file("o.gguf") + " q4_0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, dir.file("iq.gguf") + ": tensor 'blk.0.attn_q.weight': cannot convert from IQ4_NL"))
      << r.err;

  // A vocabulary file with no tokens.
  GgufWriter empty;
  empty.set("general.architecture", "llama");
  empty.set("tokenizer.ggml.model", "llama");
  empty.set("tokenizer.ggml.tokens", GgufArray{GgufType::STRING, {}});
  empty.write(dir.file("empty-vocab.gguf"));
  r = run_command(kBin + " make-model -o " + dir.file("x.gguf") + " --vocab " + dir.file("empty-vocab.gguf"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "the vocabulary in " + dir.file("empty-vocab.gguf") + " is empty")) << r.err;
  // And one without the tokens key at all.
  GgufWriter keyless;
  keyless.set("general.architecture", "llama");
  keyless.write(dir.file("keyless.gguf"));
  r = run_command(kBin + " make-model -o " + dir.file("x.gguf") + " --vocab " + dir.file("keyless.gguf"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, dir.file("keyless.gguf") + ": missing metadata key 'tokenizer.ggml.tokens'")) << r.err;
}

TEST(CliRobustness, MakeModelRejectsWhatTheLoaderRejects) {
  TempDir dir;
  struct Case {
    std::string args, message;
  };
  for (const Case& c : {Case{"--rope-freq-base 0", "--rope-freq-base must be positive and finite, got 0"},
                        Case{"--rope-freq-base nan", "--rope-freq-base must be positive and finite, got nan"},
                        Case{"--rope-freq-base inf", "--rope-freq-base must be positive and finite, got inf"},
                        Case{"--rms-norm-eps 0", "--rms-norm-eps must be positive and finite, got 0"},
                        Case{"--rms-norm-eps -1e-5", "--rms-norm-eps must be positive and finite"},
                        Case{"--rope-scaling linear --rope-scaling-factor inf", "--rope-scaling-factor must be"},
                        Case{"--head-dim -2", "--head-dim must be positive"},
                        // Passes make-model's own checks; the loader's (reused) catch it.
                        Case{"--n-head 4 --n-head-kv 4 --head-dim 536870912",
                             "would not load: metadata: head_count 4 x head dimension 536870912 is too large"}}) {
    CommandResult r = run_command(kBin + " make-model -o " + dir.file("m.gguf") + " " + c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args;
    EXPECT_TRUE(contains(r.err, c.message)) << c.args << ": " << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir.file("m.gguf"))) << c.args;
  }
  // What it accepts, generate loads.
  const std::string m = small_model(dir, "--rope-freq-base 500000 --rms-norm-eps 1e-6");
  EXPECT_EQ(run_command(kBin + " generate -p hi -n 1 -m " + m).exit_code, 0);
}

TEST(CliRobustness, QuantizeIntoADirectoryFailsFirstAndLeavesNothing) {
  TempDir dir;
  const std::string m = small_model(dir);
  std::filesystem::create_directory(dir.file("q"));
  for (const std::string& out : {dir.file("q") + "/", dir.file("q")}) {
    CommandResult r = run_command(kBin + " quantize " + m + " " + out + " q4_0");
    EXPECT_EQ(r.exit_code, 1) << out;
    EXPECT_TRUE(contains(r.err, out + " is a directory")) << r.err;
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.file("q")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("q.tmp")));
  CommandResult r = run_command(kBin + " quantize " + m + " " + dir.file("no/such/o.gguf") + " q4_0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "the directory " + dir.file("no/such") + " does not exist")) << r.err;
  r = run_command(kBin + " make-model -o " + dir.file("q"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, dir.file("q") + " is a directory")) << r.err;
}
