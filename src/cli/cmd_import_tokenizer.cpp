// `parallama import-tokenizer --encoder encoder.json --merges vocab.bpe --pre llama-bpe -o out.gguf`:
// a vocab-only GGUF (tokenizer.ggml.* metadata, no tensors) from a GPT-2 /
// Hugging Face style byte-level BPE tokenizer.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "tokenizer/import_hf.h"
#include "tokenizer/tokenizer.h"

namespace pl::cli {

void register_import_tokenizer(CLI::App& app) {
  struct Options {
    std::string encoder, merges, out, added_tokens;
    HfBpeImportOptions import;
    bool llama3_specials = false;
    std::string bos, eos, eot;
    std::string add_bos;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("import-tokenizer", "Write a vocab-only GGUF from encoder.json + merges (byte-level BPE)");
  cmd->add_option("--encoder", o->encoder, "encoder.json / vocab.json: token -> id")->required();
  cmd->add_option("--merges", o->merges, "vocab.bpe / merges.txt: one merge per line, in rank order")->required();
  cmd->add_option("--pre", o->import.pre, "Pre-tokenizer (tokenizer.ggml.pre), e.g. llama-bpe, gpt-2, qwen2")
      ->required();
  cmd->add_option("-o,--output", o->out, "Output GGUF path")->required();
  cmd->add_option("--added-tokens", o->added_tokens,
                  "JSON with added/special tokens: tokenizer.json, tokenizer_config.json, or a list");
  cmd->add_flag("--llama3-specials", o->llama3_specials, "Add Llama 3.1+'s 256 special tokens at 128000..128255");
  cmd->add_option("--bos", o->bos, "Text of the BOS token (default: the family's, when present)");
  cmd->add_option("--eos", o->eos, "Text of the EOS token");
  cmd->add_option("--eot", o->eot, "Text of the end-of-turn token");
  cmd->add_option("--add-bos", o->add_bos, "Whether to add BOS when tokenizing (true/false; default: the family's)")
      ->check(CLI::IsMember({"true", "false"}));
  cmd->callback([o] {
    HfBpeImportOptions opt = o->import;
    if (o->llama3_specials) opt.added_tokens = llama3_special_tokens();
    if (!o->added_tokens.empty()) {
      std::ifstream in(o->added_tokens, std::ios::binary);
      if (!in) fail("cannot open '{}'", o->added_tokens);
      const std::string json{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      for (HfAddedToken& t : parse_hf_added_tokens(json)) opt.added_tokens.push_back(std::move(t));
    }
    if (!o->bos.empty()) opt.bos = o->bos;
    if (!o->eos.empty()) opt.eos = o->eos;
    if (!o->eot.empty()) opt.eot = o->eot;
    if (!o->add_bos.empty()) opt.add_bos = o->add_bos == "true";
    GgufWriter w;
    import_hf_bpe_files(o->encoder, o->merges, opt, w);
    w.write(o->out);
    // Load what we wrote, so a vocab the tokenizer would reject fails here, not at serve time.
    const Tokenizer tok = Tokenizer::from_gguf(GgufFile::open(o->out));
    std::printf("wrote %s: %d tokens, pre '%s', bos %d, eos %d, eot %d\n", o->out.c_str(), tok.n_vocab(),
                tok.pre().c_str(), tok.bos(), tok.eos(), tok.eot());
  });
}

}  // namespace pl::cli
