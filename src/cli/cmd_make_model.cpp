// `parallama make-model`: write a random-weight llama-family model of any shape.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <limits>

#include "cli/commands.h"
#include "kernels/thread_pool.h"
#include "model/file_type.h"
#include "model/random_model.h"

namespace pl::cli {

void register_make_model(CLI::App& app) {
  struct Options {
    RandomModelSpec spec;
    std::string out;
    int threads = 0;
    bool no_parallel = false;
  };
  auto o = std::make_shared<Options>();
  RandomModelSpec& s = o->spec;
  auto* cmd = app.add_subcommand("make-model", "Write a random-weight llama-family model (for tests and benchmarks)");
  cmd->add_option("-o,--output", o->out, "Output GGUF path")->required();
  cmd->add_option("--arch", s.arch, "Architecture: llama, qwen2, qwen3")->capture_default_str();
  cmd->add_option("--n-embd", s.n_embd, "Embedding width")->capture_default_str();
  cmd->add_option("--n-layer", s.n_layer, "Number of blocks")->capture_default_str();
  cmd->add_option("--n-head", s.n_head, "Attention heads")->capture_default_str();
  cmd->add_option("--n-head-kv", s.n_head_kv, "Key/value heads (grouped-query attention)")->capture_default_str();
  cmd->add_option("--n-ff", s.n_ff, "Feed-forward width")->capture_default_str();
  cmd->add_option("--n-ctx", s.n_ctx, "Training context length")->capture_default_str();
  cmd->add_option("--head-dim", s.head_dim, "Head dimension (default n_embd / n_head)");
  cmd->add_option("--n-vocab", s.n_vocab, "Size of the synthetic vocabulary when --vocab is not given")
      ->capture_default_str();
  cmd->add_option("--vocab", s.vocab_path, "Copy the tokenizer from this GGUF (e.g. a vocab-only file)");
  cmd->add_option("--type", s.type, "Weight type: " + file_type_names())->capture_default_str();
  cmd->add_option("--seed", s.seed, "Random seed (same seed, same file)")->capture_default_str();
  cmd->add_option("--rope-freq-base", s.rope_freq_base, "RoPE base frequency")->capture_default_str();
  cmd->add_option("--rope-scaling", s.rope_scaling, "RoPE scaling: none, linear, llama3")->capture_default_str();
  cmd->add_option("--rope-scaling-factor", s.rope_scaling_factor, "RoPE scaling factor")->capture_default_str();
  cmd->add_flag("--tied-output", s.tied_output, "No output.weight: reuse token_embd for the output projection");
  cmd->add_option("--rms-norm-eps", s.rms_norm_eps, "RMSNorm epsilon")->capture_default_str();
  cmd->add_option("--name", s.name, "general.name")->capture_default_str();
  cmd->add_flag("--no-parallel", o->no_parallel,
                "Declare that the model cannot batch sequences (parallama.supports_parallel = false)");
  cmd->add_option("-t,--threads", o->threads, "Threads (default: physical cores)")
      ->check(CLI::Range(0, std::numeric_limits<int>::max()));
  cmd->callback([o] {
    o->spec.supports_parallel = !o->no_parallel;
    int threads = o->threads > 0 ? o->threads : default_thread_count();
    const std::string notes = write_random_model(o->spec, o->out, threads);
    if (!notes.empty()) std::fprintf(stderr, "%s\n", notes.c_str());
    std::fprintf(stderr, "wrote %s\n", o->out.c_str());
  });
}

}  // namespace pl::cli
