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
#include <array>
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
  // a tile of tokens; generous so every level fits. The float GEMMs need none.
  (void)n_tok;
  return static_cast<size_t>(n_cols) * (4 * 40 + 48) + 128 * 1024;
}

namespace {

constexpr size_t kMaxOutputs = 4;  // matrices over one input in matmul_multi (Q, K, V)

void check_shape(const WeightView& w, int64_t ldx, int64_t n_tok, int64_t ldy) {
  const int64_t bs = block_elems(w.type);
  if (w.n_cols <= 0 || w.n_cols % bs != 0)
    fail("matmul: n_cols {} is not a positive multiple of the {} block size {}", w.n_cols, dtype_name(w.type), bs);
  if (w.n_rows < 0 || n_tok < 0 || ldx < w.n_cols || ldy < w.n_rows)
    fail("matmul: bad shape (n_rows {}, n_cols {}, n_tok {}, ldx {}, ldy {})", w.n_rows, w.n_cols, n_tok, ldx, ldy);
}

// The activations in the kernels' format: x itself for float weights, else
// quantized once into this thread's buffer (over the pool when large).
struct Activations {
  const uint8_t* data;
  size_t row_bytes;
};

Activations prepare_activations(const LevelTable& table, DType wt, ActFormat act, const float* x, int64_t ldx,
                                int64_t n_cols, int64_t n_tok, ThreadPool& pool) {
  if (act == ActFormat::F32) return {reinterpret_cast<const uint8_t*>(x), static_cast<size_t>(ldx) * sizeof(float)};
  // An odd number of cache lines per row: with a power-of-two-ish stride the
  // tokens of a tile would share a few L1 sets.
  size_t rb = (act_row_bytes(act, n_cols) + 63) / 64 * 64;
  if ((rb / 64) % 2 == 0) rb += 64;
  auto* buf = static_cast<uint8_t*>(t_act_buf.ensure(rb * static_cast<size_t>(n_tok)));
  if (pool.size() == 1 || n_tok == 1 || n_tok * n_cols < kParallelQuantizeElems) {
    for (int64_t t = 0; t < n_tok; ++t) table.vec.quantize_act(wt, x + t * ldx, buf + static_cast<size_t>(t) * rb, n_cols);
  } else {
    // A run of its own rather than a barrier inside the GEMM's run: slots of
    // a run() may execute one after the other on one thread.
    pool.run([&](int ith, int nth) {
      for (int64_t t = n_tok * ith / nth; t < n_tok * (ith + 1) / nth; ++t)
        table.vec.quantize_act(wt, x + t * ldx, buf + static_cast<size_t>(t) * rb, n_cols);
    });
  }
  return {buf, rb};
}

// Guided self-scheduling over units [0, total), called by every slot of one
// pool run: each claim takes 1 / share_div of the units left (share_div = 2 x
// threads), at least one and at most max_at(c) >= 1 (a chunk size, or a
// boundary the claim must not cross); run(c, n) runs units [c, c + n). Claims
// start long (weights streamed in long runs) and shrink to one unit at the end,
// so the threads finish together: with fixed chunks one thread sat idle for
// half a chunk on average at the end of every run, ~10% of the kernel time of
// an 8-token step.
template <class MaxAt, class Run>
void claim_guided(std::atomic<int64_t>& next, int64_t total, int64_t share_div, MaxAt&& max_at, Run&& run) {
  // next only grows, so the values one thread sees of it only grow too.
  for (int64_t c = next.load(std::memory_order_relaxed); c < total;) {
    const int64_t n = std::min(std::max<int64_t>((total - c) / share_div, 1), max_at(c));
    if (!next.compare_exchange_weak(c, c + n, std::memory_order_relaxed)) continue;  // c reloaded
    run(c, n);
    c = next.load(std::memory_order_relaxed);
  }
}

// How a packed matrix is cut into the chunks the threads claim (units of
// pairs of groups, the kernels' row tile). Small batches stream the weights:
// chunks of up to a quarter of a thread's share, long contiguous runs. Large
// batches reuse each chunk's weights for every token tile: chunks sized to
// stay in L2. Either way the size is a maximum: see run_packed.
struct PackedPlan {
  PackedGemmArgs args;
  PackedGemmFn fn;
  int64_t n_pairs;
  int64_t max_chunk_pairs;
};

PackedPlan plan_packed(const TypeTraits& tr, const WeightView& w, const Activations& xa, int64_t n_tok, float* y,
                       int64_t ldy, int n_threads) {
  const PackedWeights& pw = *w.packed;
  PL_CHECK(pw.type == w.type && pw.n_rows == w.n_rows && pw.n_cols == w.n_cols, "matmul: packed weights do not match the view");
  const int64_t n_pairs = (pw.n_groups + 1) / 2;
  const int64_t per_thread = (n_pairs + n_threads - 1) / n_threads;
  int64_t chunk_pairs = std::max<int64_t>(1, (per_thread + 3) / 4);
  if (n_tok > 16) {
    constexpr int64_t kL2Chunk = 384 * 1024;
    chunk_pairs = std::clamp<int64_t>(kL2Chunk / static_cast<int64_t>(2 * pw.group_bytes), 1,
                                      std::max<int64_t>(1, (per_thread + 1) / 2));
  }
  PackedGemmArgs a{pw.data, pw.group_bytes, w.n_rows, w.n_cols, xa.data, xa.row_bytes, n_tok, y, ldy};
  return {a, tr.gemm_packed, n_pairs, chunk_pairs};
}

// Pairs [p0, p1) of one plan.
void run_pairs(const PackedPlan& p, int64_t p0, int64_t p1) {
  const int64_t n_groups = (p.args.n_rows + kPackRows - 1) / kPackRows;
  p.fn(p.args, 2 * p0, std::min(n_groups, 2 * p1));
}

// The pairs of all the plans in one parallel run, claimed in order; a claim
// stays within one plan.
void run_packed(std::span<const PackedPlan> plans, ThreadPool& pool) {
  std::array<int64_t, kMaxOutputs + 1> first{};  // first[i]: index of plan i's first pair in the run
  PL_CHECK(plans.size() <= kMaxOutputs, "run_packed: {} plans", plans.size());
  for (size_t i = 0; i < plans.size(); ++i) first[i + 1] = first[i] + plans[i].n_pairs;
  std::atomic<int64_t> next{0};
  pool.run([&](int, int) {
    size_t i = 0;  // the plan of the pair being claimed (claims only move forward)
    claim_guided(
        next, first[plans.size()], 2 * static_cast<int64_t>(pool.size()),
        [&](int64_t c) {
          while (c >= first[i + 1]) ++i;
          return std::min(plans[i].max_chunk_pairs, first[i + 1] - c);
        },
        [&](int64_t c, int64_t n) { run_pairs(plans[i], c - first[i], c - first[i] + n); });
  });
}

// The unpacked paths: tiled GEMM on row chunks, or vec_dot per (row, token).
void matmul_unpacked(const TypeTraits& tr, const WeightView& w, const Activations& xa, int64_t n_tok, float* y,
                     int64_t ldy, ThreadPool& pool) {
  GemmArgs args;
  args.w = static_cast<const uint8_t*>(w.data);
  args.w_row_bytes = row_bytes(w.type, static_cast<size_t>(w.n_cols));
  args.n_rows = w.n_rows;
  args.n_cols = w.n_cols;
  args.n_tok = n_tok;
  args.y = y;
  args.ldy = ldy;
  args.xa = xa.data;
  args.xa_row_bytes = xa.row_bytes;

  const bool use_gemm = n_tok >= tr.gemm_min_tok;
  const int64_t align = use_gemm ? std::max(tr.row_align, 1) : 1;
  // Chunks of at most 1 / 8 (GEMM) or 1 / 16 of a thread's share: enough for the
  // threads to balance (others may share the cores), few enough that
  // per-chunk setup stays negligible.
  const int64_t n_units = (w.n_rows + align - 1) / align;
  const int64_t target_chunks = static_cast<int64_t>(pool.size()) * (use_gemm ? 8 : 16);
  const int64_t max_units = std::max<int64_t>(1, n_units / std::max<int64_t>(target_chunks, 1));
  const size_t scratch_bytes = use_gemm ? gemm_scratch_bytes(w.n_cols, n_tok) : 0;
  std::atomic<int64_t> next{0};

  pool.run([&](int, int) {
    void* scratch = use_gemm ? t_scratch_buf.ensure(scratch_bytes) : nullptr;
    claim_guided(
        next, n_units, 2 * static_cast<int64_t>(pool.size()), [&](int64_t) { return max_units; },
        [&](int64_t c, int64_t n) {
          const int64_t r0 = c * align, r1 = std::min(w.n_rows, (c + n) * align);
          if (use_gemm) {
            tr.gemm(args, r0, r1, scratch);
          } else {
            for (int64_t r = r0; r < r1; ++r) {
              const uint8_t* wr = args.w + static_cast<size_t>(r) * args.w_row_bytes;
              for (int64_t t = 0; t < n_tok; ++t)
                y[t * ldy + r] = tr.vec_dot(w.n_cols, wr, args.xa + static_cast<size_t>(t) * args.xa_row_bytes);
            }
          }
        });
  });
}

const TypeTraits& traits_of(const LevelTable& table, const WeightView& w) {
  const TypeTraits* tr = table.traits(w.type);
  if (tr == nullptr) fail("matmul: weight type {} is not supported", dtype_name(w.type));
  return *tr;
}

bool uses_packed(const TypeTraits& tr, const WeightView& w) { return w.packed != nullptr && tr.gemm_packed != nullptr; }

}  // namespace

void matmul_multi_with(const LevelTable& table, std::span<const MatmulOutput> outs, const float* x, int64_t ldx,
                       int64_t n_tok, ThreadPool& pool) {
  PL_CHECK(outs.size() <= kMaxOutputs, "matmul: at most {} matrices share one input, got {}", kMaxOutputs, outs.size());
  if (outs.empty()) return;
  const WeightView& w0 = *outs[0].w;
  std::array<const TypeTraits*, kMaxOutputs> trs{};
  // One conversion of x and one parallel run for all the matrices when their
  // packed kernels take the same activations (same format and zero-point);
  // otherwise each matrix on its own.
  bool shared = true;
  for (size_t i = 0; i < outs.size(); ++i) {
    const WeightView& w = *outs[i].w;
    trs[i] = &traits_of(table, w);
    check_shape(w, ldx, n_tok, outs[i].ldy);
    if (w.n_cols != w0.n_cols) fail("matmul: matrices over one input must have the same n_cols ({} vs {})", w.n_cols, w0.n_cols);
    shared = shared && uses_packed(*trs[i], w) && trs[i]->act == trs[0]->act && act_offset(w.type) == act_offset(w0.type);
  }
  if (n_tok == 0) return;
  std::array<PackedPlan, kMaxOutputs> plans;
  if (!shared) {
    for (size_t i = 0; i < outs.size(); ++i) {
      const MatmulOutput& o = outs[i];
      if (o.w->n_rows == 0) continue;
      const Activations xa = prepare_activations(table, o.w->type, trs[i]->act, x, ldx, o.w->n_cols, n_tok, pool);
      if (uses_packed(*trs[i], *o.w)) {
        plans[0] = plan_packed(*trs[i], *o.w, xa, n_tok, o.y, o.ldy, pool.size());
        run_packed(std::span<const PackedPlan>(plans.data(), 1), pool);
      } else {
        matmul_unpacked(*trs[i], *o.w, xa, n_tok, o.y, o.ldy, pool);
      }
    }
    return;
  }
  const Activations xa = prepare_activations(table, w0.type, trs[0]->act, x, ldx, w0.n_cols, n_tok, pool);
  for (size_t i = 0; i < outs.size(); ++i)
    plans[i] = plan_packed(*trs[i], *outs[i].w, xa, n_tok, outs[i].y, outs[i].ldy, pool.size());
  run_packed(std::span<const PackedPlan>(plans.data(), outs.size()), pool);
}

void matmul_with(const LevelTable& table, const WeightView& w, const float* x, int64_t ldx, int64_t n_tok,
                 float* y, int64_t ldy, ThreadPool& pool) {
  const MatmulOutput out{&w, y, ldy};
  matmul_multi_with(table, std::span<const MatmulOutput>(&out, 1), x, ldx, n_tok, pool);
}

}  // namespace detail

void matmul(const WeightView& w, const float* x, int64_t ldx, int64_t n_tok, float* y, int64_t ldy,
            ThreadPool& pool) {
  detail::matmul_with(detail::active(), w, x, ldx, n_tok, y, ldy, pool);
}

void matmul_multi(std::span<const MatmulOutput> outs, const float* x, int64_t ldx, int64_t n_tok, ThreadPool& pool) {
  detail::matmul_multi_with(detail::active(), outs, x, ldx, n_tok, pool);
}

}  // namespace pl::kernels
