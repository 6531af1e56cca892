// Tokenizer throughput (MB/s of UTF-8 input) on ~400 KB of deterministic mixed
// text: English prose, C++ code, numbers, CJK, Cyrillic and emoji, for SPM,
// byte-level BPE (GPT-2, Llama 3 imported from HF files, DeepSeek's 6-regex
// pre-tokenizer) and WordPiece vocabs from shared/testdata; plus decode speed
// and the load time of the 128k-token Llama 3 vocab.
//   bench_tokenizer [--benchmark_filter=Encode]   (PARALLAMA_TESTDATA overrides the data path)
#include <benchmark/benchmark.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bench_vocab.h"
#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "tokenizer/import_hf.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace {

// Deterministic mixed text, about `n_bytes` long.
std::string mixed_text(size_t n_bytes) {
  static const char* const kWords[] = {
      "the", "model", "server", "tokenizes", "every", "prompt", "and", "streams", "tokens", "back", "to", "clients",
      "while", "batching", "requests", "in", "parallel", "memory", "bandwidth", "limits", "decode", "speed", "of",
      "large", "language", "models", "running", "on", "CPUs", "with", "quantized", "weights", "Ollama", "API"};
  static const char* const kCode[] = {
      "for (int i = 0; i < n; ++i) {\n    sum += a[i] * b[i];\n}\n",
      "def forward(self, x):\n    return self.proj(torch.relu(x)) + x  # residual\n",
      "std::vector<int32_t> ids = tok.encode(text, /*add_special=*/true, false);\n",
      "if err != nil {\n\treturn fmt.Errorf(\"load %s: %w\", path, err)\n}\n",
      "SELECT id, name FROM users WHERE created_at > '2024-01-01' ORDER BY id;\n"};
  static const char* const kOther[] = {
      "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C\xE3\x80\x82",  // 你好，世界。
      "\xE6\x88\x91\xE6\x83\xB3\xE5\x9C\xA8\xE8\xBF\x99\xE9\x87\x8C\xE5\xB7\xA5\xE4\xBD\x9C",
      "\xE3\x81\x93\xE3\x82\x93\xE3\x81\xAB\xE3\x81\xA1\xE3\x81\xAF",  // こんにちは
      "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4",                          // 한국어
      "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82, \xD0\xBC\xD0\xB8\xD1\x80!",
      "\xF0\x9F\x9A\x80\xF0\x9F\xA6\x99 \xF0\x9F\x98\x81", "\xE2\x9C\x85 done",
      "Caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9"};
  std::mt19937 rng(42);
  std::string s;
  s.reserve(n_bytes + 256);
  while (s.size() < n_bytes) {
    const int kind = static_cast<int>(rng() % 10);
    if (kind < 5) {  // a sentence of prose
      const int n = 6 + static_cast<int>(rng() % 14);
      for (int i = 0; i < n; ++i) {
        std::string w = kWords[rng() % std::size(kWords)];
        if (i == 0) w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
        s += w;
        s += i + 1 == n ? ". " : (rng() % 8 == 0 ? ", " : " ");
      }
    } else if (kind < 7) {
      s += kCode[rng() % std::size(kCode)];
    } else if (kind < 8) {  // numbers
      s += std::to_string(rng() % 1000000) + " + " + std::to_string(rng() % 1000) + "." +
           std::to_string(rng() % 100) + " = ? ";
    } else {
      s += kOther[rng() % std::size(kOther)];
      s += rng() % 3 == 0 ? "\n" : " ";
    }
  }
  return s;
}

const std::string& bench_text() {
  static const std::string t = mixed_text(400 * 1024);
  return t;
}

void BM_Encode(benchmark::State& state, const std::string& name) {
  const pl::Tokenizer* tok = pl::bench::vocab_or_skip(state, name);
  if (tok == nullptr) return;
  const std::string& text = bench_text();
  size_t n_tokens = 0;
  for (auto _ : state) {
    auto ids = tok->encode(text, false, false);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
  state.counters["bytes/token"] = static_cast<double>(text.size()) / static_cast<double>(n_tokens);
}

void BM_Decode(benchmark::State& state, const std::string& name) {
  const pl::Tokenizer* tok = pl::bench::vocab_or_skip(state, name);
  if (tok == nullptr) return;
  const auto ids = tok->encode(bench_text(), false, false);
  for (auto _ : state) {
    std::string s = tok->decode(ids);
    benchmark::DoNotOptimize(s.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bench_text().size()));
}

void BM_LoadLlama3Vocab(benchmark::State& state) {
  const fs::path dir = pl::bench::vocab_dir() / "llama3.2-bpe";
  if (!fs::exists(dir)) {
    state.SkipWithError("llama3.2-bpe not found");
    return;
  }
  pl::HfBpeImportOptions opt;
  opt.pre = "llama-bpe";
  opt.added_tokens = pl::llama3_special_tokens();
  pl::GgufWriter w;
  pl::import_hf_bpe_files((dir / "encoder.json").string(), (dir / "vocab.bpe").string(), opt, w);
  const auto bytes = w.to_bytes();
  for (auto _ : state) {
    const pl::GgufFile f = pl::GgufFile::parse(bytes);
    auto tok = pl::Tokenizer::from_gguf(f);
    benchmark::DoNotOptimize(&tok);
  }
}

}  // namespace

BENCHMARK_CAPTURE(BM_Encode, spm_llama2, std::string("llama-spm"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, bpe_gpt2, std::string("gpt-2"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, bpe_llama3, std::string("llama-bpe"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, bpe_deepseek_llm, std::string("deepseek-llm"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, wordpiece_bert, std::string("bert-bge"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, spm_llama2, std::string("llama-spm"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, bpe_llama3, std::string("llama-bpe"))->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LoadLlama3Vocab)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
