// Malformed models fail at load with a message naming the tensor or key.
#include <gtest/gtest.h>

#include <functional>

#include "gguf/gguf_writer.h"
#include "model/model.h"
#include "test_util.h"

using namespace pl;
using namespace pl::test;

namespace {

// Rewrites stories260K with `edit_tensor` deciding, per tensor, what to write
// (return false to drop it) and `edit_meta` adjusting the metadata; returns the load error.
std::string load_error(const std::function<bool(GgufWriter&, const GgufTensorInfo&)>& edit_tensor,
                       const std::function<void(GgufWriter&)>& edit_meta = {}) {
  GgufFile src = GgufFile::open((kTestdata / "models/stories260K.gguf").string());
  GgufWriter w;
  for (const GgufKV& kv : src.metadata()) w.set(kv.key, kv.value);
  if (edit_meta) edit_meta(w);
  for (const GgufTensorInfo& t : src.tensors())
    if (!edit_tensor(w, t)) continue;
  TempDir dir;
  w.write(dir.file("m.gguf"));
  try {
    Model::load(dir.file("m.gguf"));
  } catch (const Error& e) {
    return e.what();
  }
  return "(loaded without error)";
}

bool keep(GgufWriter& w, const GgufTensorInfo& t) {
  w.add_tensor(t.name, t.type, t.shape, t.bytes());
  return true;
}

}  // namespace

TEST(BadModels, MissingTensor) {
  REQUIRE_TESTDATA();
  std::string e = load_error([](GgufWriter& w, const GgufTensorInfo& t) {
    return t.name == "blk.2.attn_k.weight" ? false : keep(w, t);
  });
  EXPECT_NE(e.find("tensor 'blk.2.attn_k.weight' is missing"), std::string::npos) << e;
}

TEST(BadModels, WrongShape) {
  REQUIRE_TESTDATA();
  std::string e = load_error([](GgufWriter& w, const GgufTensorInfo& t) {
    if (t.name != "blk.1.ffn_up.weight") return keep(w, t);
    // Same bytes, transposed shape.
    w.add_tensor(t.name, t.type, {t.shape[1], t.shape[0]}, t.bytes());
    return true;
  });
  EXPECT_NE(e.find("tensor 'blk.1.ffn_up.weight': expected shape [64, 172], got [172, 64]"), std::string::npos) << e;
}

TEST(BadModels, UnsupportedDtype) {
  REQUIRE_TESTDATA();
  std::string e = load_error([](GgufWriter& w, const GgufTensorInfo& t) {
    if (t.name != "blk.0.attn_q.weight") return keep(w, t);
    w.add_tensor(t.name, DType::I32, t.shape, t.bytes());  // same byte count as F32
    return true;
  });
  EXPECT_NE(e.find("tensor 'blk.0.attn_q.weight': type I32 is not supported"), std::string::npos) << e;
}

TEST(BadModels, NormMustBeF32) {
  REQUIRE_TESTDATA();
  std::string e = load_error([](GgufWriter& w, const GgufTensorInfo& t) {
    if (t.name != "output_norm.weight") return keep(w, t);
    w.add_tensor(t.name, DType::F16, {t.shape[0] * 2}, t.bytes());
    return true;
  });
  EXPECT_NE(e.find("tensor 'output_norm.weight': expected shape [64], got [128]"), std::string::npos) << e;
}

TEST(BadModels, UnexpectedTensor) {
  REQUIRE_TESTDATA();
  std::string e = load_error([](GgufWriter& w, const GgufTensorInfo& t) {
    keep(w, t);
    if (t.name == "output_norm.weight") w.add_tensor("blk.9.mystery.weight", t.type, t.shape, t.bytes());
    return true;
  });
  EXPECT_NE(e.find("tensor 'blk.9.mystery.weight' is not used"), std::string::npos) << e;
}

TEST(BadModels, UnsupportedArchitecture) {
  REQUIRE_TESTDATA();
  std::string e = load_error(keep, [](GgufWriter& w) { w.set("general.architecture", "gptj"); });
  EXPECT_NE(e.find("unsupported model architecture 'gptj'"), std::string::npos) << e;
}

TEST(BadModels, MissingHyperParameter) {
  REQUIRE_TESTDATA();
  std::string e = load_error(keep, [](GgufWriter& w) { w.remove("llama.block_count"); });
  EXPECT_NE(e.find("missing metadata key 'llama.block_count'"), std::string::npos) << e;
  e = load_error(keep, [](GgufWriter& w) { w.set("llama.attention.head_count_kv", uint32_t{3}); });
  EXPECT_NE(e.find("not a multiple of head_count_kv 3"), std::string::npos) << e;
  e = load_error(keep, [](GgufWriter& w) { w.set("llama.rope.scaling.type", "yarn"); });
  EXPECT_NE(e.find("unsupported rope scaling type 'yarn'"), std::string::npos) << e;
}
