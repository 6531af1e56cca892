// Kernel benchmarks, reported against this machine's memory roofline.
//
//   MemRead/threads:N        streaming read of a 1 GiB buffer: the bandwidth limit
//   Matmul/<type>/<rows>x<cols>/<n_tok>
//                            n_tok 1: weights streamed from DRAM (the matrix is
//                            cycled through copies larger than the caches);
//                            counters GB/s (weight bytes) and GOP/s (2 ops per MAC)
//   MatmulPacked/...         the same over weights repacked at load (pack_weights),
//                            the path the model runs where the level has the kernel
//   MatmulInCache/<type>/<512 x threads>x2048/<n_tok>
//                            packed, the matrix kept in the cores' L2 (every n_tok):
//                            512 rows a core (Q4_0: 576 KiB of the 1 MiB L2);
//                            the kernel's own speed, without DRAM; Gvnni/s counts
//                            vpdpbusd-equivalents (64 int8 MACs) for VnniPeak;
//                            F16 (the float GEMM) against FmaPeak in GOP/s
//   VnniPeak/threads:N       independent vpdpbusd on registers only: the int8
//                            ceiling of this CPU (Gvnni/s; x128 = int8 GOP/s)
//   FmaPeak/threads:N        the same with vfmadd231ps (Gfma/s; x32 = fp32 GFLOP/s)
//   DecodeStep/<model>       all matmuls of one token of a 1.1B TinyLlama-shaped
//                            model (n_embd 2048, n_ff 5632, 22 layers, 4 KV heads,
//                            vocab 32000): tok/s and GB/s
//   PrefillStep/<model>/<n>  the same for a batch of n tokens: tok/s and GOP/s
//
// PARALLAMA_CPU=scalar|avx2|avx512 picks the level, PARALLAMA_THREADS the pool
// size (default: physical cores). On a shared machine the neighbours' load
// moves single runs by +-30%: use --benchmark_repetitions=N and read the "max"
// row of a rate counter (the least disturbed run).
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <algorithm>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace {

using pl::DType;
using pl::ThreadPool;
namespace k = pl::kernels;

ThreadPool& pool() {
  static ThreadPool p([] {
    const char* e = std::getenv("PARALLAMA_THREADS");
    return e != nullptr ? std::atoi(e) : pl::default_thread_count();
  }());
  return p;
}

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<uint8_t, AlignedFree>;
Buffer alloc(size_t n) {
  return Buffer(static_cast<uint8_t*>(std::aligned_alloc(4096, (n + 4095) & ~size_t{4095})));
}

// A matrix of `rows` rows filled with copies of a few properly quantized
// random rows (random bytes could make subnormal or NaN scales).
void fill_matrix(DType t, int64_t rows, int64_t cols, uint8_t* dst, uint32_t seed) {
  const int64_t n_distinct = 16;
  const size_t rb = pl::row_bytes(t, static_cast<size_t>(cols));
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> f(static_cast<size_t>(cols));
  std::vector<uint8_t> proto(rb * n_distinct);
  for (int64_t r = 0; r < n_distinct; ++r) {
    for (float& v : f) v = dist(rng);
    k::quantize_row(t, f.data(), proto.data() + r * rb, cols);
  }
  for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * rb, proto.data() + (r % n_distinct) * rb, rb);
}

std::vector<float> random_acts(int64_t n) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = dist(rng);
  return x;
}

void BM_MemRead(benchmark::State& state) {
  const int n_threads = static_cast<int>(state.range(0));
  const size_t bytes = size_t{1} << 30;
  Buffer buf = alloc(bytes);
  std::memset(buf.get(), 1, bytes);
  ThreadPool tp(n_threads);
  const auto* f = reinterpret_cast<const float*>(buf.get());
  const int64_t n = static_cast<int64_t>(bytes / sizeof(float));
  float sink = 0;
  for (auto _ : state) {
    tp.run([&](int ith, int nth) {
      const int64_t b = n * ith / nth, e = n * (ith + 1) / nth;
      const float s = k::dot_f32(f + b, f + b, e - b);  // one stream: the second load hits L1
      if (ith == 0) sink = s;
    });
    benchmark::DoNotOptimize(sink);
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(bytes) * static_cast<double>(state.iterations()),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_MemRead)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();

// A statistic for --benchmark_repetitions: the best run of a rate counter.
double max_of(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

// The most vpdpbusd (or vfmadd231ps) one thread retires: 12 independent
// accumulators (more than latency x throughput), operands in registers.
template <bool kFma>
__attribute__((target("avx512f,avx512vnni"))) float peak_loop(int64_t n) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
          a9 = a0, a10 = a0, a11 = a0;
  const __m512i w = _mm512_set1_epi8(3), x = _mm512_set1_epi8(5);
  for (int64_t i = 0; i < n; ++i) {
#define PL_OP(a)                                                                   \
  if constexpr (kFma) __asm__ volatile("vfmadd231ps %1, %2, %0" : "+v"(a) : "v"(w), "v"(x)); \
  else __asm__ volatile("vpdpbusd %1, %2, %0" : "+v"(a) : "v"(w), "v"(x));
    PL_OP(a0) PL_OP(a1) PL_OP(a2) PL_OP(a3) PL_OP(a4) PL_OP(a5)
    PL_OP(a6) PL_OP(a7) PL_OP(a8) PL_OP(a9) PL_OP(a10) PL_OP(a11)
#undef PL_OP
  }
  __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                               _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
  s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11)));
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, _mm512_castsi512_ps(s));
  return lanes[0];
}

// Gvnni/s (x128 = int8 GOP/s) or, FmaPeak, Gfma/s (x32 = fp32 GFLOP/s).
template <bool kFma>
void BM_Peak(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx512vnni")) {
    state.SkipWithError("no AVX-512 VNNI on this CPU");
    return;
  }
  const int n_threads = static_cast<int>(state.range(0));
  ThreadPool tp(n_threads);
  constexpr int64_t kIters = 1 << 20;  // x12 instructions per thread
  float sink = 0;
  for (auto _ : state) {
    tp.run_together([&](int ith, int) {  // every thread at once, on its own core
      const float v = peak_loop<kFma>(kIters);
      if (ith == 0) sink = v;
    });
    benchmark::DoNotOptimize(sink);
  }
  state.counters[kFma ? "Gfma/s" : "Gvnni/s"] =
      benchmark::Counter(12.0 * kIters * n_threads * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Peak<false>)->Name("VnniPeak")->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)
    ->UseRealTime()->ComputeStatistics("max", max_of);
BENCHMARK(BM_Peak<true>)->Name("FmaPeak")->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)
    ->UseRealTime()->ComputeStatistics("max", max_of);

void BM_Matmul(benchmark::State& state, DType t, int64_t rows, int64_t cols, bool packed, bool in_cache) {
  const int64_t n_tok = state.range(0);
  const size_t mat_bytes = pl::row_bytes(t, static_cast<size_t>(cols)) * static_cast<size_t>(rows);
  // Decode-sized calls stream weights from DRAM: cycle through >= 256 MiB of copies.
  const int64_t n_copies = n_tok == 1 && !in_cache ? std::max<int64_t>(1, static_cast<int64_t>((size_t{256} << 20) / mat_bytes) + 1) : 1;
  Buffer w = alloc(mat_bytes * static_cast<size_t>(n_copies));
  fill_matrix(t, rows, cols, w.get(), 1);
  for (int64_t c = 1; c < n_copies; ++c) std::memcpy(w.get() + c * mat_bytes, w.get(), mat_bytes);
  std::vector<std::unique_ptr<k::PackedWeights>> packs;
  if (packed) {
    if (!k::has_packed_kernel(t)) {
      state.SkipWithError("no packed kernel for this type at this level");
      return;
    }
    for (int64_t i = 0; i < n_copies; ++i) packs.push_back(k::pack_weights(k::WeightView{t, rows, cols, w.get() + i * mat_bytes}));
  }
  auto x = random_acts(n_tok * cols);
  std::vector<float> y(static_cast<size_t>(n_tok * rows));
  int64_t c = 0;
  for (auto _ : state) {
    const k::WeightView wv{t, rows, cols, w.get() + c * mat_bytes, packed ? packs[static_cast<size_t>(c)].get() : nullptr};
    k::matmul(wv, x.data(), cols, n_tok, y.data(), rows, pool());
    c = (c + 1) % n_copies;
    benchmark::DoNotOptimize(y.data());
  }
  const double it = static_cast<double>(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(mat_bytes) * it, benchmark::Counter::kIsRate,
                                              benchmark::Counter::kIs1000);
  state.counters["GOP/s"] = benchmark::Counter(2.0 * static_cast<double>(rows * cols * n_tok) * it,
                                               benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
  if (in_cache && packed)
    state.counters["Gvnni/s"] = benchmark::Counter(static_cast<double>(rows * cols * n_tok) / 64.0 * it,
                                                   benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
  state.SetLabel(std::string(k::cpu_level_name()) + " x" + std::to_string(pool().size()));
}

// ---- a 1.1B TinyLlama-shaped model ----

struct Mat {
  DType type;
  int64_t rows, cols;
  size_t offset;  // into the model buffer
};

struct Model {
  std::vector<Mat> mats;  // in forward order
  std::vector<std::unique_ptr<k::PackedWeights>> packed;  // [mats], nullptr where not packed
  Buffer data;
  size_t bytes = 0;
  int64_t macs_per_token = 0;
};

// Q4_K_M keeps attn_v and ffn_down at Q6_K in the first and last eighth of the
// layers and every third layer between, and the output matrix at Q6_K.
bool q4km_more_bits(int layer, int n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

Model build_model(const std::string& name) {
  const int n_layer = 22;
  const int64_t n_embd = 2048, n_ff = 5632, n_kv = 256, n_vocab = 32000;
  DType base = DType::F16;
  if (name == "Q4_0") base = DType::Q4_0;
  else if (name == "Q8_0") base = DType::Q8_0;
  else if (name == "Q4_K_M") base = DType::Q4_K;
  Model m;
  auto add = [&](DType t, int64_t rows, int64_t cols) {
    m.mats.push_back({t, rows, cols, m.bytes});
    m.bytes += pl::row_bytes(t, static_cast<size_t>(cols)) * static_cast<size_t>(rows);
    m.macs_per_token += rows * cols;
  };
  for (int l = 0; l < n_layer; ++l) {
    const DType more = name == "Q4_K_M" && q4km_more_bits(l, n_layer) ? DType::Q6_K : base;
    add(base, n_embd, n_embd);  // attn_q
    add(base, n_kv, n_embd);    // attn_k
    add(more, n_kv, n_embd);    // attn_v
    add(base, n_embd, n_embd);  // attn_output
    add(base, n_ff, n_embd);    // ffn_gate
    add(base, n_ff, n_embd);    // ffn_up
    add(more, n_embd, n_ff);    // ffn_down
  }
  add(name == "Q4_K_M" || name == "Q4_0" ? DType::Q6_K : base, n_vocab, n_embd);  // output
  m.data = alloc(m.bytes);
  uint32_t seed = 1;
  for (const Mat& mt : m.mats) fill_matrix(mt.type, mt.rows, mt.cols, m.data.get() + mt.offset, seed++);
  // As the model loader does: repack once for the kernels of this level, all
  // matrices in one huge-page arena.
  size_t n_packed = 0;
  for (const Mat& mt : m.mats) n_packed += k::packed_bytes(k::WeightView{mt.type, mt.rows, mt.cols, m.data.get() + mt.offset});
  k::PackArena arena(n_packed);
  for (const Mat& mt : m.mats)
    m.packed.push_back(k::pack_weights(k::WeightView{mt.type, mt.rows, mt.cols, m.data.get() + mt.offset}, 2, &arena));
  return m;
}

void run_model(const Model& m, const float* x, int64_t n_tok, float* y) {
  for (size_t i = 0; i < m.mats.size(); ++i) {
    const Mat& mt = m.mats[i];
    k::matmul(k::WeightView{mt.type, mt.rows, mt.cols, m.data.get() + mt.offset, m.packed[i].get()}, x, mt.cols, n_tok,
              y, mt.rows, pool());
  }
}

void BM_ModelStep(benchmark::State& state, const std::string& name) {
  const int64_t n_tok = state.range(0);
  static std::string cached_name;
  static Model cached;
  if (cached_name != name) {
    cached = Model{};
    cached = build_model(name);
    cached_name = name;
  }
  const Model& m = cached;
  auto x = random_acts(n_tok * 5632);
  std::vector<float> y(static_cast<size_t>(n_tok * 32000));
  for (auto _ : state) {
    run_model(m, x.data(), n_tok, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  const double it = static_cast<double>(state.iterations());
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(n_tok) * it, benchmark::Counter::kIsRate);
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(m.bytes) * it, benchmark::Counter::kIsRate,
                                              benchmark::Counter::kIs1000);
  state.counters["GOP/s"] = benchmark::Counter(2.0 * static_cast<double>(m.macs_per_token * n_tok) * it,
                                               benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
  state.SetLabel(std::string(k::cpu_level_name()) + " x" + std::to_string(pool().size()) + ", " +
                 std::to_string(m.bytes >> 20) + " MiB weights");
}

int register_all() {
  const std::pair<const char*, DType> types[] = {
      {"F32", DType::F32},   {"F16", DType::F16},   {"BF16", DType::BF16}, {"Q8_0", DType::Q8_0},
      {"Q4_0", DType::Q4_0}, {"Q4_1", DType::Q4_1}, {"Q5_0", DType::Q5_0}, {"Q5_1", DType::Q5_1},
      {"Q4_K", DType::Q4_K}, {"Q5_K", DType::Q5_K}, {"Q6_K", DType::Q6_K}};
  for (auto [name, t] : types) {
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{2048, 2048}, {5632, 2048}}) {
      const std::string shape = std::string(name) + "/" + std::to_string(rows) + "x" + std::to_string(cols);
      benchmark::RegisterBenchmark(("Matmul/" + shape).c_str(), BM_Matmul, t, rows, cols, false, false)
          ->Arg(1)->Arg(64)->Arg(512)->ArgName("n_tok")->Unit(benchmark::kMicrosecond)->UseRealTime();
      if (t == DType::Q4_0 || t == DType::Q8_0 || t == DType::Q4_K || t == DType::Q6_K)
        benchmark::RegisterBenchmark(("MatmulPacked/" + shape).c_str(), BM_Matmul, t, rows, cols, true, false)
            ->Arg(1)->Arg(4)->Arg(8)->Arg(16)->Arg(64)->Arg(512)->ArgName("n_tok")->Unit(benchmark::kMicrosecond)->UseRealTime();
    }
    // 512 rows x 2048 a thread: 0.3-0.55 MB of packed weights a core, within its L2
    // (1024 x 2048 at 2 threads; with PARALLAMA_THREADS=1 and taskset, one core's rate).
    const bool packed = t == DType::Q4_0 || t == DType::Q8_0 || t == DType::Q4_K || t == DType::Q6_K;
    const int64_t in_cache_rows = 512 * pool().size();
    if (packed || t == DType::F16)
      benchmark::RegisterBenchmark(
          ("MatmulInCache/" + std::string(name) + "/" + std::to_string(in_cache_rows) + "x2048").c_str(), BM_Matmul,
          t, in_cache_rows, int64_t{2048}, packed, true)
          ->Arg(1)->Arg(2)->Arg(4)->Arg(6)->Arg(8)->Arg(12)->Arg(64)->ArgName("n_tok")->Unit(benchmark::kMicrosecond)->UseRealTime()
          ->ComputeStatistics("max", max_of);
  }
  for (const char* m : {"Q4_0", "Q8_0", "Q4_K_M", "F16"}) {
    benchmark::RegisterBenchmark((std::string("DecodeStep/") + m).c_str(), BM_ModelStep, std::string(m))
        ->Arg(1)->ArgName("n_tok")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
    // Parallel decoding: B sequences' tokens in one step, weights streamed from DRAM once.
    benchmark::RegisterBenchmark((std::string("BatchStep/") + m).c_str(), BM_ModelStep, std::string(m))
        ->Arg(4)->Arg(8)->Arg(16)->ArgName("n_tok")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
    benchmark::RegisterBenchmark((std::string("PrefillStep/") + m).c_str(), BM_ModelStep, std::string(m))
        ->Arg(64)->Arg(512)->ArgName("n_tok")->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
  }
  return 0;
}
const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
