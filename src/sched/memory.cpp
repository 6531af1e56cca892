#include "sched/memory.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "gguf/gguf.h"
#include "model/config.h"
#include "sched/sched.h"

namespace pl::sched {

ModelInfo read_model_info(const std::filesystem::path& gguf, int n_batch) {
  try {
    const GgufFile f = GgufFile::open(gguf.string());
    const ModelConfig c = ModelConfig::from_gguf(f);
    ModelInfo m;
    m.arch = c.arch;
    m.name = c.name;
    m.can_batch = supports_parallel(f);
    m.n_ctx_train = c.n_ctx_train;
    m.weights_bytes = std::filesystem::file_size(gguf);
    m.kv_bytes_per_token = uint64_t{2} * c.n_layer * c.n_head_kv * c.head_dim * sizeof(uint16_t);
    // Per token of a batch, in fp32: the residual stream, its norm and the
    // attention output (3 x n_embd), Q and its attention result (2 x n_embd_q),
    // K and V (2 x n_embd_kv), the feed-forward gate and up (2 x n_ff), and the logits.
    const uint64_t per_token = uint64_t{3} * c.n_embd + uint64_t{2} * c.n_embd_q() + uint64_t{2} * c.n_embd_kv() +
                               uint64_t{2} * c.n_ff + static_cast<uint64_t>(c.n_vocab);
    m.compute_bytes = per_token * sizeof(float) * static_cast<uint64_t>(n_batch);
    return m;
  } catch (const std::filesystem::filesystem_error& e) {
    fail("cannot read model '{}': {}", gguf.string(), e.code().message());
  } catch (const Error& e) {
    fail("cannot read model '{}': {}", gguf.string(), e.what());
  }
}

uint64_t runner_size_bytes(const ModelInfo& m, int num_ctx, int parallel) {
  return m.weights_bytes + m.kv_bytes_per_token * static_cast<uint64_t>(num_ctx) * static_cast<uint64_t>(parallel) +
         m.compute_bytes;
}

uint64_t mem_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream s(line.substr(13));
    uint64_t kib = 0;
    std::string unit;
    if (s >> kib >> unit && unit == "kB") return kib * 1024;
    break;
  }
  fail("cannot read MemAvailable from /proc/meminfo (set PARALLAMA_AVAILABLE_MEMORY to the bytes models may use)");
}

std::string format_bytes(uint64_t n) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (n < 1024) return fmt::format("{} B", n);
  double v = static_cast<double>(n) / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", v, kUnits[u]);
}

int default_parallel(uint64_t weights_bytes, uint64_t kv_bytes_per_token, int num_ctx, uint64_t budget,
                     std::string* why, uint64_t compute_bytes) {
  constexpr int kParallel = 4;
  const uint64_t kv = kv_bytes_per_token * static_cast<uint64_t>(num_ctx) * kParallel;
  const uint64_t need = weights_bytes + kv + compute_bytes;
  const int n = need <= budget ? kParallel : 1;
  if (why != nullptr)
    *why = fmt::format(
        "weights {} + KV {} x {} tokens x {}/token = {} + compute {} = {} {} budget {}: parallel {}",
        format_bytes(weights_bytes), kParallel, num_ctx, format_bytes(kv_bytes_per_token), format_bytes(kv),
        format_bytes(compute_bytes), format_bytes(need), need <= budget ? "fits in" : "exceeds", format_bytes(budget),
        n);
  return n;
}

}  // namespace pl::sched
