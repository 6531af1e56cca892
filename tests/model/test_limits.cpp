// Sizes at and past the limits: contexts, KV pools, forward-pass buffers,
// metadata the loader must reject before sizing anything from it, and the
// type policy's fallbacks.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "model/config.h"
#include "model/file_type.h"
#include "model/kv_store.h"
#include "model/model.h"
#include "test_util.h"

using namespace pl;
using namespace pl::test;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Llama metadata of a small model with one key changed by `edit`.
std::string config_error(const std::function<void(GgufWriter&)>& edit) {
  GgufWriter w;
  w.set("general.architecture", "llama");
  w.set("llama.embedding_length", uint32_t{64});
  w.set("llama.block_count", uint32_t{2});
  w.set("llama.feed_forward_length", uint32_t{128});
  w.set("llama.attention.head_count", uint32_t{4});
  w.set("tokenizer.ggml.tokens", GgufArray{GgufType::STRING, {GgufValue("a"), GgufValue("b")}});
  edit(w);
  const std::vector<uint8_t> bytes = w.to_bytes();
  try {
    ModelConfig::from_gguf(GgufFile::parse(bytes));
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

ModelConfig small_config() {
  ModelConfig c;
  c.n_vocab = 512;
  c.n_embd = 64;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 16;
  c.n_ff = 128;
  c.n_rot = 16;
  return c;
}

}  // namespace

TEST(Limits, ContextSizes) {
  EXPECT_NO_THROW(check_context_size(1));
  EXPECT_NO_THROW(check_context_size(kMaxContext));
  EXPECT_TRUE(contains(error_of([] { check_context_size(0); }), "context size 0 must be positive"));
  EXPECT_TRUE(contains(error_of([] { check_context_size(-5); }), "context size -5 must be positive"));
  EXPECT_TRUE(contains(error_of([] { check_context_size(2147483647); }),
                       "context size 2147483647 is too large (at most 1073741824 tokens)"));
  EXPECT_EQ(kv_blocks_for_context(1, 32), 1);
  EXPECT_EQ(kv_blocks_for_context(64, 32), 2);
  EXPECT_EQ(kv_blocks_for_context(65, 32), 3);
  // The block count of the largest context fits an int for any block size.
  EXPECT_EQ(kv_blocks_for_context(kMaxContext, 1), kMaxContext);
  EXPECT_TRUE(contains(error_of([] { kv_blocks_for_context(int64_t{1} << 40, 32); }), "is too large"));
  const KvStoreConfig kc = KvStoreConfig::for_context(small_config(), 100, 32);
  EXPECT_EQ(kc.n_blocks, 4);
  EXPECT_EQ(kc.n_layer, 2);
  EXPECT_EQ(kc.n_bytes(), 2u * 4 * 2 * 32 * 16 * 2 * 2);
}

TEST(Limits, KvPoolThatCannotBeAllocatedIsAnError) {
  // 2^30 tokens x 64 layers x 64 KV heads x 128 dims x 4 bytes: 2^51 bytes, more than any address space.
  ModelConfig c = small_config();
  c.n_layer = 64;
  c.n_head_kv = 64;
  c.head_dim = 128;
  const KvStoreConfig kc = KvStoreConfig::for_context(c, kMaxContext, 32);
  const std::string e = error_of([&] { KvStore kv(kc); });
  EXPECT_TRUE(contains(e, "the KV cache for a context of 1073741824 tokens")) << e;
  EXPECT_TRUE(contains(e, std::to_string(uint64_t{1} << 51) + " bytes")) << e;
  // Shapes whose byte count overflows 64 bits.
  KvStoreConfig huge{1 << 30, 1 << 30, 1 << 30, 32, 1 << 20};
  EXPECT_TRUE(contains(error_of([&] { (void)huge.n_bytes(); }), "too large to address"));
}

TEST(Limits, ForwardStateThatCannotBeAllocatedIsAnError) {
  ModelConfig c = small_config();
  c.n_embd = 1 << 20;
  c.n_ff = 1 << 24;
  const std::string e = error_of([&] { ForwardState st(c, std::numeric_limits<int>::max(), 1); });
  EXPECT_TRUE(contains(e, "for a batch of 2147483647 tokens")) << e;
}

TEST(Limits, LoaderRejectsAbsurdOrNonFiniteMetadata) {
  EXPECT_EQ(config_error([](GgufWriter&) {}), "(no error)");
  EXPECT_TRUE(contains(config_error([](GgufWriter& w) { w.set("llama.block_count", uint32_t{2147483647}); }),
                       "expected a positive size"));
  EXPECT_TRUE(contains(config_error([](GgufWriter& w) { w.set("llama.block_count", uint32_t{65537}); }),
                       "65537 layers is more than 65536"));
  EXPECT_TRUE(contains(config_error([](GgufWriter& w) {
                         w.set("llama.attention.key_length", uint32_t{1} << 29);
                         w.set("llama.rope.dimension_count", uint32_t{64});
                       }),
                       "head_count 4 x head dimension 536870912 is too large"));
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(contains(config_error([&](GgufWriter& w) { w.set("llama.rope.freq_base", inf); }),
                       "rope.freq_base must be positive and finite, got inf"));
  EXPECT_TRUE(contains(config_error([&](GgufWriter& w) { w.set("llama.rope.freq_base", nan); }),
                       "rope.freq_base must be positive and finite"));
  EXPECT_TRUE(contains(config_error([&](GgufWriter& w) { w.set("llama.attention.layer_norm_rms_epsilon", inf); }),
                       "layer_norm_rms_epsilon must be positive and finite"));
}

TEST(Limits, TypeChooserCountsFallbacks) {
  const FileType q4k = *file_type_from_name("q4_k");
  TypeChooser types(q4k, 2);
  EXPECT_EQ(types.choose("blk.0.attn_norm.weight", 1, 320), DType::F32);  // not a matrix
  EXPECT_EQ(types.choose("blk.0.attn_q.weight", 2, 320), DType::Q5_0);
  EXPECT_EQ(types.choose("blk.0.attn_k.weight", 2, 320), DType::Q5_0);
  EXPECT_EQ(types.choose("blk.0.ffn_down.weight", 2, 512), DType::Q4_K);
  EXPECT_EQ(types.choose("blk.1.ffn_up.weight", 2, 72), DType::F16);  // 72 % 32 != 0 either
  EXPECT_EQ(types.choose("output.weight", 2, 320), DType::Q8_0);
  EXPECT_EQ(types.notes(),
            "note: 2 of 5 matrices are Q5_0 instead of Q4_K: their rows (320) are not a multiple of 256\n"
            "note: 1 of 5 matrices is F16 instead of Q4_K: its rows (72) are not a multiple of 256\n"
            "note: 1 of 5 matrices is Q8_0 instead of Q6_K: its rows (320) are not a multiple of 256");
  TypeChooser fits(q4k, 2);
  fits.choose("blk.0.attn_q.weight", 2, 256);
  EXPECT_EQ(fits.notes(), "");
  // Same choices as tensor_type_for.
  EXPECT_EQ(TypeChooser(q4k, 2).choose("blk.0.attn_q.weight", 2, 96),
            tensor_type_for(q4k, "blk.0.attn_q.weight", 2, 96, 2));
}
