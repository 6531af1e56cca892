// The matmul driver: converts the activations once per call, then splits the
// weight rows over the pool threads. Each thread runs its level's tiled kernel
// on whole row chunks for all tokens, so every weight block is read from
// memory once per call whatever the batch size.
//
// Accuracy: quantized weight types take 8-bit activations, one fp32 scale per
// 32 elements (legacy blocks) or per 256 (K-quants) with round-to-nearest, so
// the result carries a relative error of about 0.5/127/sqrt(3) per activation
// element on top of the weights' own quantization. Integer sums are exact;
// levels differ from the scalar reference only in float summation order.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>

#include "core/error.h"
#include "kernels/kernels_internal.h"

namespace pl::kernels {
namespace detail {
namespace {

// A 64-byte aligned buffer that only grows, so steady-state calls never allocate.
class GrowBuffer {
 public:
  void* ensure(size_t n) {
    if (n > cap_) {
      size_t cap = std::max<size_t>(n + n / 4, 4096);
      cap = (cap + 63) & ~size_t{63};
      void* p = std::aligned_alloc(64, cap);
      PL_CHECK(p != nullptr, "out of memory allocating {} bytes of kernel scratch", cap);
      buf_.reset(static_cast<uint8_t*>(p));
      cap_ = cap;
    }
    return buf_.get();
  }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> buf_;
  size_t cap_ = 0;
};

thread_local GrowBuffer t_act_buf;      // activations of the matmul this thread drives
thread_local GrowBuffer t_scratch_buf;  // this thread's kernel scratch (weight panels, accumulators)

// Quantizing activations is worth splitting over threads only past this many elements.
constexpr int64_t kParallelQuantizeElems = 32768;

}  // namespace

size_t gemm_scratch_bytes(int64_t n_cols, int64_t n_tok) {
  // Weight panels for up to 4 x 32 rows (1 byte per weight + per-row scales:
  // 40 bytes per column per 32 rows), a copy of up to 32 padded tail rows (at
  // most ~1.1 bytes per element for the quantized types), and accumulators for
  // a tile of tokens; generous so every level fits.
  // The float GEMM uses 8 x 32-row panels of 256 fp32 columns (256 KB).
  (void)n_tok;
  return std::max<size_t>(static_cast<size_t>(n_cols) * (4 * 40 + 48) + 128 * 1024, (8 * 32 * 256 + (12 + 16) * 272) * 4);
}

void matmul_with(const LevelTable& table, const WeightView& w, const float* x, int64_t ldx, int64_t n_tok,
                 float* y, int64_t ldy, ThreadPool& pool) {
  const TypeTraits* tr = table.traits(w.type);
  if (tr == nullptr) fail("matmul: weight type {} is not supported", dtype_name(w.type));
  const int64_t bs = block_elems(w.type);
  if (w.n_cols <= 0 || w.n_cols % bs != 0)
    fail("matmul: n_cols {} is not a positive multiple of the {} block size {}", w.n_cols, dtype_name(w.type), bs);
  if (w.n_rows < 0 || n_tok < 0 || ldx < w.n_cols || ldy < w.n_rows)
    fail("matmul: bad shape (n_rows {}, n_cols {}, n_tok {}, ldx {}, ldy {})", w.n_rows, w.n_cols, n_tok, ldx, ldy);
  if (n_tok == 0 || w.n_rows == 0) return;

  GemmArgs args;
  args.w = static_cast<const uint8_t*>(w.data);
  args.w_row_bytes = row_bytes(w.type, static_cast<size_t>(w.n_cols));
  args.n_rows = w.n_rows;
  args.n_cols = w.n_cols;
  args.n_tok = n_tok;
  args.y = y;
  args.ldy = ldy;

  const bool quantize = tr->act != ActFormat::F32;
  bool quantize_in_pool = false;
  if (!quantize) {
    args.xa = reinterpret_cast<const uint8_t*>(x);
    args.xa_row_bytes = static_cast<size_t>(ldx) * sizeof(float);
  } else {
    // An odd number of cache lines per row: with a power-of-two-ish stride the
    // tokens of a tile would share a few L1 sets.
    args.xa_row_bytes = (act_row_bytes(tr->act, w.n_cols) + 63) / 64 * 64;
    if ((args.xa_row_bytes / 64) % 2 == 0) args.xa_row_bytes += 64;
    auto* buf = static_cast<uint8_t*>(t_act_buf.ensure(args.xa_row_bytes * static_cast<size_t>(n_tok)));
    args.xa = buf;
    quantize_in_pool = pool.size() > 1 && n_tok > 1 && n_tok * w.n_cols >= kParallelQuantizeElems;
    if (!quantize_in_pool) {
      for (int64_t t = 0; t < n_tok; ++t)
        table.vec.quantize_act(w.type, x + t * ldx, buf + static_cast<size_t>(t) * args.xa_row_bytes, w.n_cols);
    } else {
      // A run of its own rather than a barrier inside the GEMM's run: slots of
      // a run() may execute one after the other on one thread.
      pool.run([&](int ith, int nth) {
        for (int64_t t = n_tok * ith / nth; t < n_tok * (ith + 1) / nth; ++t)
          table.vec.quantize_act(w.type, x + t * ldx, buf + static_cast<size_t>(t) * args.xa_row_bytes, w.n_cols);
      });
    }
  }

  if (w.packed != nullptr && tr->gemm_packed != nullptr) {
    const PackedWeights& pw = *w.packed;
    PL_CHECK(pw.type == w.type && pw.n_rows == w.n_rows && pw.n_cols == w.n_cols, "matmul: packed weights do not match the view");
    PackedGemmArgs pa{pw.data.get(), pw.group_bytes, w.n_rows, w.n_cols, args.xa, args.xa_row_bytes, n_tok, y, ldy};
    // Work in pairs of groups (the kernels' row tile). Small batches stream the
    // weights: a few long contiguous chunks per thread. Large batches reuse each
    // chunk's weights for every token tile: chunks sized to stay in L2.
    const int64_t n_pairs = (pw.n_groups + 1) / 2;
    const int64_t per_thread = (n_pairs + pool.size() - 1) / pool.size();
    int64_t chunk_pairs = std::max<int64_t>(1, (per_thread + 3) / 4);
    if (n_tok > 16) {
      constexpr int64_t kL2Chunk = 384 * 1024;
      chunk_pairs = std::clamp<int64_t>(kL2Chunk / static_cast<int64_t>(2 * pw.group_bytes), 1,
                                        std::max<int64_t>(1, (per_thread + 1) / 2));
    }
    const int64_t n_chunks = (n_pairs + chunk_pairs - 1) / chunk_pairs;
    std::atomic<int64_t> next{0};
    pool.run([&](int, int) {
      for (;;) {
        const int64_t c = next.fetch_add(1, std::memory_order_relaxed);
        if (c >= n_chunks) break;
        const int64_t g0 = 2 * c * chunk_pairs, g1 = std::min(pw.n_groups, g0 + 2 * chunk_pairs);
        tr->gemm_packed(pa, g0, g1);
      }
    });
    return;
  }

  const bool use_gemm = n_tok >= tr->gemm_min_tok;
  const int64_t align = use_gemm ? std::max(tr->row_align, 1) : 1;
  // Enough chunks for the threads to balance (others may share the cores),
  // few enough that per-chunk setup stays negligible.
  const int64_t n_units = (w.n_rows + align - 1) / align;
  const int64_t target_chunks = static_cast<int64_t>(pool.size()) * (use_gemm ? 8 : 16);
  const int64_t units_per_chunk = std::max<int64_t>(1, n_units / std::max<int64_t>(target_chunks, 1));
  const int64_t chunk_rows = units_per_chunk * align;
  const int64_t n_chunks = (w.n_rows + chunk_rows - 1) / chunk_rows;
  const size_t scratch_bytes = use_gemm ? gemm_scratch_bytes(w.n_cols, n_tok) : 0;
  std::atomic<int64_t> next_chunk{0};

  pool.run([&](int, int) {
    void* scratch = use_gemm ? t_scratch_buf.ensure(scratch_bytes) : nullptr;
    for (;;) {
      const int64_t c = next_chunk.fetch_add(1, std::memory_order_relaxed);
      if (c >= n_chunks) break;
      const int64_t r0 = c * chunk_rows, r1 = std::min(w.n_rows, r0 + chunk_rows);
      if (use_gemm) {
        tr->gemm(args, r0, r1, scratch);
      } else {
        for (int64_t r = r0; r < r1; ++r) {
          const uint8_t* wr = args.w + static_cast<size_t>(r) * args.w_row_bytes;
          for (int64_t t = 0; t < n_tok; ++t)
            y[t * ldy + r] = tr->vec_dot(w.n_cols, wr, args.xa + static_cast<size_t>(t) * args.xa_row_bytes);
        }
      }
    }
  });
}

}  // namespace detail

void matmul(const WeightView& w, const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy,
            ThreadPool& pool) {
  detail::matmul_with(detail::active(), w, x, ldx, n_tok, y, ldy, pool);
}

}  // namespace pl::kernels
