// Random-weight llama-family models of any shape, for tests and benchmarks
// (no downloads here). Deterministic: each tensor's values depend only on the
// seed and the tensor's name, not on thread count or tensor order.
#pragma once

#include <cstdint>
#include <string>

namespace pl {

struct RandomModelSpec {
  std::string arch = "llama";  // llama | qwen2 | qwen3
  int n_embd = 64;
  int n_layer = 2;
  int n_head = 4;
  int n_head_kv = 4;
  int n_ff = 128;
  int n_ctx = 2048;
  int head_dim = 0;             // 0: n_embd / n_head
  int n_vocab = 512;            // size of the synthetic vocab when vocab_path is empty
  std::string vocab_path;       // copy tokenizer.* metadata from this GGUF
  std::string type = "f32";     // a file type name (see file_type.h)
  uint64_t seed = 1;
  float rope_freq_base = 10000.0f;
  std::string rope_scaling = "none";  // none | linear | llama3
  float rope_scaling_factor = 1.0f;
  bool tied_output = false;     // no output.weight: the output projection reuses token_embd
  float rms_norm_eps = 1e-5f;
  std::string name = "random";
  bool supports_parallel = true;  // false: writes parallama.supports_parallel = false (the scheduler forces parallel 1)
};

// Validates the spec (pl::Error on a bad shape or option, or one the loader
// would reject) and writes the model. Returns notes for the user (matrices
// whose rows made them fall back to another type), empty when there are none.
std::string write_random_model(const RandomModelSpec& spec, const std::string& path, int n_threads);

}  // namespace pl
