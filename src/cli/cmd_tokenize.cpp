// `parallama tokenize -m FILE.gguf [--no-bos] [--parse-special] [--pieces] [TEXT | --file F]`:
// the token ids of a text under a model's tokenizer, space-separated on one line.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace pl::cli {
namespace {

std::string read_input(const std::string& path) {
  if (path == "-") return {std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '{}'", path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

void register_tokenize(CLI::App& app) {
  struct Options {
    std::string model;
    std::string text;
    std::string file;
    bool no_bos = false;
    bool parse_special = false;
    bool pieces = false;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("tokenize", "Print the token ids of a text under a model's tokenizer");
  cmd->add_option("-m,--model", o->model, "GGUF file with tokenizer metadata (a model or a vocab-only file)")
      ->required();
  auto* text_opt = cmd->add_option("text", o->text, "Text to tokenize");
  auto* file_opt = cmd->add_option("-f,--file", o->file, "Read the text from a file ('-' for stdin)");
  text_opt->excludes(file_opt);
  cmd->add_flag("--no-bos", o->no_bos, "Add no BOS/EOS (or CLS/SEP), whatever the model's metadata says");
  cmd->add_flag("--parse-special", o->parse_special,
                "Match control tokens such as <|im_start|> in the text (as chat templates need)");
  cmd->add_flag("--pieces", o->pieces, "Print one 'id<TAB>piece' line per token instead");
  cmd->callback([o, text_opt, file_opt] {
    if (text_opt->count() == 0 && file_opt->count() == 0) fail("give the text to tokenize, or --file");
    const std::string text = file_opt->count() > 0 ? read_input(o->file) : o->text;
    const Tokenizer tok = Tokenizer::from_gguf(GgufFile::open(o->model));
    const std::vector<int32_t> ids = tok.encode(text, !o->no_bos, o->parse_special);
    if (o->pieces) {
      for (int32_t id : ids) std::printf("%d\t%s\n", id, tok.token_text(id).c_str());
      return;
    }
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i > 0) line.push_back(' ');
      line += std::to_string(ids[i]);
    }
    std::printf("%s\n", line.c_str());
  });
}

}  // namespace pl::cli
