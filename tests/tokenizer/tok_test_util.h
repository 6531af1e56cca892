// Helpers for the tokenizer tests: testdata discovery, the .inp/.out format,
// and tokenizers loaded once per process (vocab files and the imported Llama 3).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "tokenizer/import_hf.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace pl::toktest {

namespace fs = std::filesystem;

using pl::test::error_of;
using pl::test::kTestdata;
using pl::test::read_file;

// Timing assertions are off under sanitizers, which slow everything several-fold.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
inline const fs::path kVocabDir = kTestdata / "vocab";

// A vocab name as a valid GoogleTest parameter name ("" when testdata is absent).
inline std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param.empty() ? "none" : info.param;
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return s;
}

// HF-format tokenizers in testdata that stand in for a vocab GGUF we do not
// have (by the name used in ggml-vocab-<name>.gguf.inp): directory and pre.
struct HfSource {
  const char* dir;
  const char* pre;
  bool llama3_specials;
};
inline const std::map<std::string, HfSource>& hf_sources() {
  static const std::map<std::string, HfSource> m = {{"llama-bpe", {"llama3.2-bpe", "llama-bpe", true}}};
  return m;
}

// Test strings of an .inp file (see testdata/SOURCES.md).
inline std::vector<std::string> read_inp(const fs::path& p) {
  const std::string text = read_file(p);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find(sep, pos);
    if (end == std::string::npos) {
      out.push_back(text.substr(pos));  // no trailing separator: keep the rest
      break;
    }
    out.push_back(text.substr(pos, end - pos));
    pos = end + sep.size();
  }
  return out;
}

// Expected ids per line of an .out file.
inline std::vector<std::vector<int32_t>> read_out(const fs::path& p) {
  std::istringstream in(read_file(p));
  std::vector<std::vector<int32_t>> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    int32_t id;
    while (ls >> id) ids.push_back(id);
    out.push_back(std::move(ids));
  }
  return out;
}

// Vocab names (the <name> of ggml-vocab-<name>.gguf.inp) with an .inp/.out pair.
inline std::vector<std::string> discover_pairs() {
  std::vector<std::string> names;
  std::error_code ec;
  if (!fs::is_directory(kVocabDir, ec)) return names;
  for (const auto& e : fs::directory_iterator(kVocabDir, ec)) {
    const std::string f = e.path().filename().string();
    const std::string prefix = "ggml-vocab-", suffix = ".gguf.inp";
    if (f.size() <= prefix.size() + suffix.size() || f.rfind(prefix, 0) != 0 ||
        f.compare(f.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string name = f.substr(prefix.size(), f.size() - prefix.size() - suffix.size());
    if (fs::exists(kVocabDir / ("ggml-vocab-" + name + ".gguf.out"))) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Vocab GGUF names in testdata (with or without test pairs).
inline std::vector<std::string> discover_vocabs() {
  std::vector<std::string> names;
  std::error_code ec;
  if (!fs::is_directory(kVocabDir, ec)) return names;
  for (const auto& e : fs::directory_iterator(kVocabDir, ec)) {
    const std::string f = e.path().filename().string();
    const std::string prefix = "ggml-vocab-", suffix = ".gguf";
    if (f.size() <= prefix.size() + suffix.size() || f.rfind(prefix, 0) != 0 ||
        f.compare(f.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    names.push_back(f.substr(prefix.size(), f.size() - prefix.size() - suffix.size()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

// GGUF bytes of an HF-format tokenizer imported from testdata.
inline std::vector<uint8_t> import_hf_source(const HfSource& src) {
  HfBpeImportOptions opt;
  opt.pre = src.pre;
  if (src.llama3_specials) opt.added_tokens = llama3_special_tokens();
  GgufWriter w;
  const fs::path dir = kVocabDir / src.dir;
  import_hf_bpe_files((dir / "encoder.json").string(), (dir / "vocab.bpe").string(), opt, w);
  return w.to_bytes();
}

// The tokenizer for a vocab name: ggml-vocab-<name>.gguf, else a known HF
// source. nullptr when neither is available. Loaded once per process.
inline const Tokenizer* tokenizer_for(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  std::lock_guard lock(mu);
  auto it = cache.find(name);
  if (it != cache.end()) return it->second.get();
  std::unique_ptr<Tokenizer> tok;
  const fs::path gguf = kVocabDir / ("ggml-vocab-" + name + ".gguf");
  if (fs::exists(gguf)) {
    tok = std::make_unique<Tokenizer>(Tokenizer::from_gguf(GgufFile::open(gguf.string())));
  } else if (auto src = hf_sources().find(name); src != hf_sources().end() && fs::exists(kVocabDir / src->second.dir)) {
    const std::vector<uint8_t> bytes = import_hf_source(src->second);
    tok = std::make_unique<Tokenizer>(Tokenizer::from_gguf(GgufFile::parse(bytes)));
  }
  return (cache[name] = std::move(tok)).get();
}

#define REQUIRE_TOKENIZER(var, name)                                                                    \
  const ::pl::Tokenizer* var = ::pl::toktest::tokenizer_for(name);                                      \
  if (var == nullptr) GTEST_SKIP() << "vocab '" << (name) << "' not found in " << ::pl::toktest::kVocabDir

// A string with control and non-ASCII bytes escaped, for failure messages.
inline std::string escaped(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x20 && b < 0x7F && b != '\\') {
      out.push_back(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", b);
      out += buf;
    }
  }
  return out;
}

inline std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    s.push_back(' ');
    s.append(std::to_string(id));
  }
  return s;
}

}  // namespace pl::toktest
