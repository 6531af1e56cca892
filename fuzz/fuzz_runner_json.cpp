// libFuzzer target for the runner's request parsers (src/runner/json_params):
// any byte string is a request body given to every endpoint's parser, with a
// real SPM tokenizer (../shared/testdata's Llama 2 vocabulary, when present:
// PARALLAMA_FUZZ_VOCAB overrides the path). Everything must end in parameters
// or pl::Error (the runner's 400); a crash, a sanitizer report, a hang or any
// other exception is a bug. Built with ASan+UBSan.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "gguf/gguf.h"
#include "runner/json_params.h"
#include "tokenizer/tokenizer.h"

namespace {

const pl::Tokenizer* tokenizer() {
  static const std::unique_ptr<pl::Tokenizer> tok = []() -> std::unique_ptr<pl::Tokenizer> {
    const char* env = std::getenv("PARALLAMA_FUZZ_VOCAB");
    const std::string path = env != nullptr ? env : "../shared/testdata/vocab/ggml-vocab-llama-spm.gguf";
    if (!std::filesystem::exists(path)) return nullptr;
    static const pl::GgufFile f = pl::GgufFile::open(path);  // kept: the tokenizer may view its mapping
    return std::make_unique<pl::Tokenizer>(pl::Tokenizer::from_gguf(f));
  }();
  return tok.get();
}

template <class F>
void expect_result_or_error(F&& f) {
  try {
    f();
  } catch (const pl::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 65536) return 0;
  const std::string raw(reinterpret_cast<const char*>(data), size);
  nlohmann::json body;
  try {
    body = pl::runner::parse_body(raw);
  } catch (const pl::Error&) {
    return 0;
  }
  expect_result_or_error([&] { (void)pl::runner::parse_detokenize(body); });
  expect_result_or_error([&] { (void)pl::runner::parse_parallel(body); });
  if (const pl::Tokenizer* tok = tokenizer()) {
    expect_result_or_error([&] { (void)pl::runner::parse_completion(body, *tok, raw); });
    expect_result_or_error([&] { (void)pl::runner::parse_tokenize(body, *tok); });
    expect_result_or_error([&] { (void)pl::runner::parse_embedding(body, *tok); });
  }
  return 0;
}
