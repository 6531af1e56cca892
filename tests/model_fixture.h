// The small random llama model most engine, model and runner tests run on.
#pragma once

#include <cstdint>
#include <string>

#include "model/random_model.h"

namespace pl::test {

// 2 layers, n_embd 64, 4 heads over 2 KV heads (grouped-query attention), n_ff 128, 512-token synthetic vocab.
inline RandomModelSpec small_model_spec(const std::string& type = "f32", uint64_t seed = 1) {
  RandomModelSpec spec;
  spec.n_embd = 64;
  spec.n_layer = 2;
  spec.n_head = 4;
  spec.n_head_kv = 2;
  spec.n_ff = 128;
  spec.type = type;
  spec.seed = seed;
  return spec;
}

}  // namespace pl::test
