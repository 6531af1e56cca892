// The tokenizer vocabularies of ../shared/testdata/vocab for benchmarks: a
// ggml-vocab-<name>.gguf as it is, or "llama-bpe" imported from the
// llama3.2-bpe files when no GGUF of it is there. Header-only; the target
// defines PARALLAMA_TESTDATA (overridden by the environment variable).
#pragma once

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "tokenizer/import_hf.h"
#include "tokenizer/tokenizer.h"

namespace pl::bench {

inline std::filesystem::path vocab_dir() {
  const char* env = std::getenv("PARALLAMA_TESTDATA");
  return std::filesystem::path(env != nullptr ? env : PARALLAMA_TESTDATA) / "vocab";
}

// The tokenizer of vocabulary `name`, loaded once; nullptr when it is not there.
inline const Tokenizer* load_vocab(const std::string& name) {
  namespace fs = std::filesystem;
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second.get();
  std::unique_ptr<Tokenizer> tok;
  const fs::path gguf = vocab_dir() / ("ggml-vocab-" + name + ".gguf");
  if (fs::exists(gguf)) {
    tok = std::make_unique<Tokenizer>(Tokenizer::from_gguf(GgufFile::open(gguf.string())));
  } else if (name == "llama-bpe" && fs::exists(vocab_dir() / "llama3.2-bpe")) {
    HfBpeImportOptions opt;
    opt.pre = "llama-bpe";
    opt.added_tokens = llama3_special_tokens();
    GgufWriter w;
    import_hf_bpe_files((vocab_dir() / "llama3.2-bpe/encoder.json").string(),
                        (vocab_dir() / "llama3.2-bpe/vocab.bpe").string(), opt, w);
    const auto bytes = w.to_bytes();
    tok = std::make_unique<Tokenizer>(Tokenizer::from_gguf(GgufFile::parse(bytes)));
  }
  return (cache[name] = std::move(tok)).get();
}

// load_vocab, or nullptr after marking the benchmark skipped with the reason.
inline const Tokenizer* vocab_or_skip(benchmark::State& state, const std::string& name) {
  const Tokenizer* tok = load_vocab(name);
  if (tok == nullptr) state.SkipWithError(("vocab not found in testdata: " + name).c_str());
  return tok;
}

}  // namespace pl::bench
