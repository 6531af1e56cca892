// `parallama logits`: run token ids through the model and save the logits of
// every position as a .npy file. The bridge to tests/reference, where the
// NumPy reference computes the same logits independently.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <cstring>
#include <sstream>

#include "cli/commands.h"
#include "engine/single_sequence.h"
#include "kernels/thread_pool.h"
#include "model/kv_store.h"
#include "model/model.h"

namespace pl::cli {
namespace {

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    try {
      size_t used = 0;
      long v = std::stol(item, &used);
      if (used != item.size()) throw std::invalid_argument(item);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      fail("--tokens: '{}' is not a token id", item);
    }
  }
  if (ids.empty()) fail("--tokens: no token ids given");
  return ids;
}

// NumPy .npy v1.0: magic, header length, a Python dict literal padded to 64 bytes, raw little-endian data.
void write_npy(const std::string& path, const float* data, size_t rows, size_t cols) {
  std::string header = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", rows, cols);
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) fail("cannot create {}: {}", path, std::strerror(errno));
  const uint16_t hlen = static_cast<uint16_t>(header.size());
  bool ok = std::fwrite("\x93NUMPY\x01\x00", 1, 8, f) == 8 && std::fwrite(&hlen, 2, 1, f) == 1 &&
            std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
            std::fwrite(data, sizeof(float), rows * cols, f) == rows * cols;
  if (std::fclose(f) != 0 || !ok) fail("write to {} failed", path);
}

}  // namespace

void register_logits(CLI::App& app) {
  struct Options {
    std::string model, tokens, out;
    std::string dump_dir;
    int chunk = 512;
    int threads = 0;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("logits", "Save the logits of every position of a token sequence (.npy)");
  cmd->add_option("-m,--model", o->model, "GGUF model")->required();
  cmd->add_option("--tokens", o->tokens, "Comma-separated token ids")->required();
  cmd->add_option("-o,--out", o->out, "Output .npy path ([n_tokens, n_vocab] float32)")->required();
  cmd->add_option("--chunk", o->chunk,
                  "Tokens per forward pass, at most the number of tokens (smaller values exercise the KV cache)")
      ->capture_default_str()
      ->check(CLI::Range(1, std::numeric_limits<int>::max()));
  cmd->add_option("-t,--threads", o->threads, "Threads (default: physical cores)")
      ->check(CLI::Range(0, std::numeric_limits<int>::max()));
  cmd->add_option("--dump", o->dump_dir,
                  "Also save every named intermediate of the forward pass as DIR/<name>[-<layer>].npy "
                  "(of the last chunk)");
  cmd->callback([o] {
    std::vector<int32_t> ids = parse_ids(o->tokens);
    check_context_size(static_cast<int64_t>(ids.size()));
    // No pass holds more than the whole sequence: a larger chunk would only size buffers for nothing.
    const int chunk = std::min<int64_t>(o->chunk, static_cast<int64_t>(ids.size()));
    auto model = Model::load(o->model);
    ThreadPool pool(o->threads > 0 ? o->threads : default_thread_count());
    SingleSequence seq(*model, static_cast<int>(ids.size()), chunk, pool);
    if (!o->dump_dir.empty()) {
      seq.state().debug = [dir = o->dump_dir](std::string_view name, int layer, const float* data, int64_t rows,
                                              int64_t cols) {
        std::string file = layer >= 0 ? fmt::format("{}/{}-{}.npy", dir, name, layer) : fmt::format("{}/{}.npy", dir, name);
        write_npy(file, data, rows, cols);
      };
    }
    std::span<const float> logits = seq.eval(ids, /*all_logits=*/true);
    write_npy(o->out, logits.data(), ids.size(), model->config().n_vocab);
  });
}

}  // namespace pl::cli
