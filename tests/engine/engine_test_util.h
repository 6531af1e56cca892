// The engine tests' common helpers: models to run, and reading a request's events to the end.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "model/model.h"
#include "model/random_model.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace pl::test {

// A model and its tokenizer (and the folder of a written random model).
struct Loaded {
  TempDir dir;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
};

inline std::unique_ptr<Loaded> load_model(std::unique_ptr<Loaded> l, const std::string& path) {
  l->model = Model::load(path);
  l->tok = std::make_unique<Tokenizer>(Tokenizer::from_gguf(l->model->gguf()));
  return l;
}

// Writes a random model of `spec` (2 threads) and loads it.
inline std::unique_ptr<Loaded> random_model_of(const RandomModelSpec& spec) {
  auto l = std::make_unique<Loaded>();
  const std::string path = l->dir.file("m.gguf");
  write_random_model(spec, path, 2);
  return load_model(std::move(l), path);
}

inline std::unique_ptr<Loaded> stories() {
  return load_model(std::make_unique<Loaded>(), (kTestdata / "models/stories260K.gguf").string());
}

struct Result {
  std::vector<int32_t> tokens;
  std::string text;
  Event last;  // the final event (done)
};

// An engine configuration for the tests: 2 threads.
inline EngineConfig cfg(int parallel, int n_ctx, int n_batch = 512) {
  EngineConfig c;
  c.n_parallel = parallel;
  c.n_ctx = n_ctx;
  c.n_batch = n_batch;
  c.n_threads = 2;
  return c;
}

inline Result drain(Request& r) {
  Result out;
  Event e;
  while (r.next(e, std::chrono::milliseconds(60000))) {
    out.tokens.insert(out.tokens.end(), e.tokens.begin(), e.tokens.end());
    out.text += e.text;
    if (e.done) {
      out.last = e;
      break;
    }
  }
  EXPECT_TRUE(out.last.done) << "request did not finish";
  return out;
}

}  // namespace pl::test
