// `parallama generate`: one prompt, one sequence, streamed to stdout; counts
// and speeds to stderr (the engine's simplest end-to-end path).
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <limits>

#include "cli/commands.h"
#include "engine/sampler.h"
#include "engine/single_sequence.h"
#include "kernels/kernels.h"
#include "kernels/thread_pool.h"
#include "model/kv_store.h"
#include "model/model.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace pl::cli {

void register_generate(CLI::App& app) {
  struct Options {
    std::string model, prompt;
    int n_predict = 128;
    int ctx_size = 0;
    int batch_size = 512;
    int threads = 0;
    bool print_ids = false;
    bool no_bos = false;
    SamplingParams sampling;
    uint64_t seed = 0;
  };
  auto o = std::make_shared<Options>();
  SamplingParams& s = o->sampling;
  auto* cmd = app.add_subcommand("generate", "Generate text from a prompt with a GGUF model");
  cmd->add_option("-m,--model", o->model, "GGUF model")->required();
  cmd->add_option("-p,--prompt", o->prompt, "Prompt text")->capture_default_str();
  cmd->add_option("-n,--n-predict", o->n_predict, "Tokens to generate (-1: until end of text or context)")
      ->capture_default_str()
      ->check(CLI::Range(-1, std::numeric_limits<int>::max()));
  cmd->add_option("-c,--ctx-size", o->ctx_size, "Context size (default: the model's, at most 4096)")
      ->check(CLI::Range(0, std::numeric_limits<int>::max()));
  auto* batch_opt =
      cmd->add_option("-b,--batch-size", o->batch_size, "Prompt tokens per forward pass (at most the context)")
          ->capture_default_str()
          ->check(CLI::Range(1, std::numeric_limits<int>::max()));
  cmd->add_option("-t,--threads", o->threads, "Threads (default: physical cores)")
      ->check(CLI::Range(0, std::numeric_limits<int>::max()));
  cmd->add_option("--temperature", s.temperature, "Sampling temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--top-k", s.top_k, "Top-k (0: off)")->capture_default_str();
  cmd->add_option("--top-p", s.top_p, "Top-p (1: off)")->capture_default_str();
  cmd->add_option("--min-p", s.min_p, "Min-p (0: off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", s.repeat_penalty, "Repeat penalty (1: off)")->capture_default_str();
  cmd->add_option("--repeat-last-n", s.repeat_last_n, "Tokens the penalties look back over")->capture_default_str();
  cmd->add_option("--presence-penalty", s.presence_penalty, "Presence penalty")->capture_default_str();
  cmd->add_option("--frequency-penalty", s.frequency_penalty, "Frequency penalty")->capture_default_str();
  auto* seed_opt = cmd->add_option("--seed", o->seed, "Random seed (default: random)");
  cmd->add_flag("--print-ids", o->print_ids, "Print all token ids (prompt and generated) instead of text");
  cmd->add_flag("--no-bos", o->no_bos, "Do not add the beginning-of-sequence token");
  cmd->callback([o, seed_opt, batch_opt] {
    if (seed_opt->count() > 0) o->sampling.seed = o->seed;
    o->sampling.validate();
    if (o->ctx_size > 0) check_context_size(o->ctx_size);
    const auto t_load = std::chrono::steady_clock::now();
    auto model = Model::load(o->model);
    Tokenizer tok = Tokenizer::from_gguf(model->gguf());
    const ModelConfig& c = model->config();
    int n_ctx = o->ctx_size > 0 ? o->ctx_size : std::min(c.n_ctx_train, 4096);
    // Allowed (positions past it are extrapolation), but worth knowing.
    if (n_ctx > c.n_ctx_train)
      std::fprintf(stderr, "warning: context size %d is larger than the model's training context (%d)\n", n_ctx,
                   c.n_ctx_train);
    // A forward pass never holds more tokens than the context: a larger batch
    // would only size buffers for nothing. The default shrinks; a given one is an error.
    if (o->batch_size > n_ctx) {
      if (batch_opt->count() > 0)
        fail("--batch-size {} is larger than the context ({} tokens)", o->batch_size, n_ctx);
      o->batch_size = n_ctx;
    }

    std::vector<int32_t> ids = tok.encode(o->prompt, /*add_special=*/!o->no_bos, /*parse_special=*/true);
    if (o->no_bos && !ids.empty() && ids.front() == tok.bos()) ids.erase(ids.begin());
    if (ids.empty()) fail("the prompt is empty and the model adds no BOS token: nothing to start from");
    if (static_cast<int>(ids.size()) >= n_ctx)
      fail("the prompt has {} tokens, which does not fit the context of {}", ids.size(), n_ctx);

    ThreadPool pool(o->threads > 0 ? o->threads : default_thread_count());
    SingleSequence seq(*model, n_ctx, o->batch_size, pool);
    Sampler sampler(o->sampling, c.n_vocab);
    // With no prompt text the output starts the text, so SPM's dummy-prefix space is dropped (as decode() does).
    StreamDecoder decoder(tok, /*strip_leading_space=*/o->prompt.empty());
    const double load_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_load).count();

    auto t0 = std::chrono::steady_clock::now();
    std::span<const float> logits = seq.eval(ids);
    auto t1 = std::chrono::steady_clock::now();
    const size_t n_prompt = ids.size();
    if (o->print_ids)
      for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
    int n_gen = 0;
    std::string stop = "length";
    while (o->n_predict < 0 || n_gen < o->n_predict) {
      const int32_t next = sampler.sample(logits.data(), ids);
      if (tok.is_eog(next)) {
        stop = "stop";
        break;
      }
      ids.push_back(next);
      ++n_gen;
      if (o->print_ids) {
        std::printf(" %d", next);
      } else {
        std::string piece = decoder.push(next);
        std::fwrite(piece.data(), 1, piece.size(), stdout);
      }
      std::fflush(stdout);
      if (seq.n_past() >= n_ctx) break;  // context full
      logits = seq.eval(std::span<const int32_t>(&next, 1));
    }
    auto t2 = std::chrono::steady_clock::now();
    if (!o->print_ids) {
      std::string rest = decoder.flush();
      std::fwrite(rest.data(), 1, rest.size(), stdout);
    }
    std::printf("\n");
    const double prompt_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    const double gen_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
    std::fprintf(stderr, "load: %.1f ms (kernels: %s, %d threads)\n", load_ms,
                 std::string(kernels::cpu_level_name()).c_str(), pool.size());
    std::fprintf(stderr, "prompt eval: %zu tokens, %.1f ms, %.2f tok/s\n", n_prompt, prompt_ms,
                 n_prompt * 1000.0 / prompt_ms);
    std::fprintf(stderr, "eval: %d tokens, %.1f ms, %.2f tok/s (stop: %s)\n", n_gen, gen_ms,
                 n_gen > 0 ? n_gen * 1000.0 / gen_ms : 0.0, stop.c_str());
  });
}

}  // namespace pl::cli
