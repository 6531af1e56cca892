// What a runner will cost: the model's sizes read from its GGUF metadata, and
// the memory the machine has for models.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace pl::sched {

struct ModelInfo {
  std::string arch;              // general.architecture
  std::string name;              // general.name (may be empty)
  bool can_batch = false;        // pl::supports_parallel
  int n_ctx_train = 0;           // the context length the model was trained for
  uint64_t weights_bytes = 0;    // the GGUF file's size (mmap'd whole)
  uint64_t kv_bytes_per_token = 0;  // n_layer * (K + V) * n_head_kv * head_dim * fp16
  uint64_t compute_bytes = 0;    // scratch for one batch of n_batch tokens: logits + activations
};

// Reads the metadata (not the weights); throws pl::Error naming the file.
ModelInfo read_model_info(const std::filesystem::path& gguf, int n_batch);

// Bytes one runner is expected to hold: weights + KV pool (num_ctx x parallel) + compute.
uint64_t runner_size_bytes(const ModelInfo& m, int num_ctx, int parallel);

// MemAvailable from /proc/meminfo; throws pl::Error when it cannot be read.
uint64_t mem_available_bytes();

// "1.5 GiB", "312.0 KiB", "17 B".
std::string format_bytes(uint64_t n);

}  // namespace pl::sched
