// `parallama detokenize -m FILE.gguf [--special] IDS...`: the text of token ids
// (ids may also be given comma- or space-separated in one argument).
#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace pl::cli {
namespace {

std::vector<int32_t> parse_ids(const std::vector<std::string>& args) {
  std::vector<int32_t> ids;
  for (const std::string& arg : args) {
    size_t pos = 0;
    while (pos < arg.size()) {
      const size_t end = arg.find_first_of(", \t\n", pos);
      const std::string_view word = std::string_view(arg).substr(pos, end == std::string::npos ? end : end - pos);
      pos = end == std::string::npos ? arg.size() : end + 1;
      if (word.empty()) continue;
      int32_t id = 0;
      const auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), id);
      if (ec != std::errc() || ptr != word.data() + word.size()) fail("'{}' is not a token id", word);
      ids.push_back(id);
    }
  }
  return ids;
}

}  // namespace

void register_detokenize(CLI::App& app) {
  struct Options {
    std::string model;
    std::vector<std::string> ids;
    bool special = false;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("detokenize", "Print the text of token ids under a model's tokenizer");
  cmd->add_option("-m,--model", o->model, "GGUF file with tokenizer metadata")->required();
  cmd->add_option("ids", o->ids, "Token ids")->required();
  cmd->add_flag("--special", o->special, "Print control tokens (BOS, <|eot_id|>, ...) as their text");
  cmd->callback([o] {
    const std::vector<int32_t> ids = parse_ids(o->ids);
    const Tokenizer tok = Tokenizer::from_gguf(GgufFile::open(o->model));
    const std::string text = tok.decode(ids, o->special);  // throws for ids out of range
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
  });
}

}  // namespace pl::cli
