// Repacking of weight matrices into the row-interleaved layouts of
// kernels_internal.h, once at load. Plain C++ (no SIMD flags): it runs once
// per model and works 4 bytes at a time, which is fast enough (well under a
// second per GB on one core).
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "core/error.h"
#include "kernels/kernels_internal.h"

namespace pl::kernels {

namespace detail {
namespace {

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void store_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void store_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

constexpr uint32_t kLo = 0x0F0F0F0Fu;

// Nibbles of elements 4j..4j+3 of a Q4_0 block (j < 8), one per byte.
inline uint32_t q4_0_quad(const BlockQ4_0& b, int j) {
  const uint32_t v = load_u32(b.qs + 4 * (j % 4));
  return j < 4 ? v & kLo : (v >> 4) & kLo;
}

// The 256 6-bit values of a Q6_K block (layout in blocks.h).
inline void q6_values(const BlockQ6_K& b, uint8_t* q) {
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    uint8_t* v = q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      v[l] = static_cast<uint8_t>((ql[l] & 15) | (qh[l] & 3) << 4);
      v[l + 32] = static_cast<uint8_t>((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4);
      v[l + 64] = static_cast<uint8_t>((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4);
      v[l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4);
    }
  }
}

// Writes group g of the packed matrix (16 rows from row 16g) to dst.
void pack_group(const WeightView& w, int64_t g, uint8_t* dst) {
  const size_t rb = row_bytes(w.type, static_cast<size_t>(w.n_cols));
  const size_t gb = packed_group_bytes(w.type, w.n_cols);
  std::memset(dst, 0, gb);
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int r = 0; r < kPackRows; ++r) {
    const int64_t row = g * kPackRows + r;
    const bool present = row < w.n_rows;
    const uint8_t* src = present ? base + static_cast<size_t>(row) * rb : nullptr;
    switch (w.type) {
      case DType::Q4_0: {
        const int64_t nb = w.n_cols / kQK;
        const auto* blk = reinterpret_cast<const BlockQ4_0*>(src);
        for (int64_t p = 0; p < (nb + 1) / 2; ++p) {
          uint8_t* out = dst + p * 576;
          const bool second = 2 * p + 1 < nb;
          for (int j = 0; j < 8; ++j) {
            const uint32_t lo = present ? q4_0_quad(blk[2 * p], j) : 0;
            const uint32_t hi = present && second ? q4_0_quad(blk[2 * p + 1], j) : 0;
            store_u32(out + 64 * j + 4 * r, lo | hi << 4);
          }
          if (present) {
            store_u16(out + 512 + 2 * r, blk[2 * p].d);
            if (second) store_u16(out + 544 + 2 * r, blk[2 * p + 1].d);
          }
        }
        break;
      }
      case DType::Q8_0: {
        const int64_t nb = w.n_cols / kQK;
        const auto* blk = reinterpret_cast<const BlockQ8_0*>(src);
        for (int64_t b = 0; b < 2 * ((nb + 1) / 2); ++b) {
          uint8_t* out = dst + (b / 2) * 1088 + (b % 2) * 512;
          for (int j = 0; j < 8; ++j) {
            const uint32_t q = present && b < nb ? load_u32(reinterpret_cast<const uint8_t*>(blk[b].qs) + 4 * j) : 0;
            store_u32(out + 64 * j + 4 * r, q ^ 0x80808080u);  // q + 128: the unsigned vpdpbusd operand
          }
          if (present && b < nb) store_u16(dst + (b / 2) * 1088 + 1024 + 32 * (b % 2) + 2 * r, blk[b].d);
        }
        break;
      }
      case DType::Q4_K: {
        if (!present) break;
        const auto* blk = reinterpret_cast<const BlockQ4_K*>(src);
        for (int64_t s = 0; s < w.n_cols / kQKK; ++s) {
          uint8_t* out = dst + s * 2304;
          for (int c = 0; c < 4; ++c)
            for (int j = 0; j < 8; ++j) store_u32(out + 512 * c + 64 * j + 4 * r, load_u32(blk[s].qs + 32 * c + 4 * j));
          store_u16(out + 2048 + 4 * r, blk[s].d);
          store_u16(out + 2048 + 4 * r + 2, blk[s].dmin);
          for (int v = 0; v < 3; ++v) store_u32(out + 2112 + 64 * v + 4 * r, load_u32(blk[s].scales + 4 * v));
        }
        break;
      }
      case DType::Q6_K: {
        if (!present) break;
        const auto* blk = reinterpret_cast<const BlockQ6_K*>(src);
        for (int64_t s = 0; s < w.n_cols / kQKK; ++s) {
          uint8_t* out = dst + s * 3392;
          uint8_t q[256];
          q6_values(blk[s], q);
          for (int c = 0; c < 4; ++c)
            for (int j = 0; j < 8; ++j)
              for (int i = 0; i < 4; ++i) {
                const int e = 64 * c + 4 * j + i;
                out[512 * c + 64 * j + 4 * r + i] = static_cast<uint8_t>((q[e] & 15) | (q[e + 32] & 15) << 4);
              }
          for (int h = 0; h < 2; ++h)
            for (int j = 0; j < 8; ++j)
              for (int i = 0; i < 4; ++i) {
                int v = 0;
                for (int m = 0; m < 4; ++m) v |= (q[128 * h + 32 * m + 4 * j + i] >> 4) << (2 * m);
                out[2048 + 512 * h + 64 * j + 4 * r + i] = static_cast<uint8_t>(v);
              }
          for (int sb = 0; sb < 16; ++sb) out[3072 + 16 * sb + r] = static_cast<uint8_t>(blk[s].scales[sb]);
          store_u16(out + 3328 + 2 * r, blk[s].d);
        }
        break;
      }
      default: PL_CHECK(false, "pack_group: no packed layout for {}", dtype_name(w.type));
    }
  }
}

void unpack_group(const PackedWeights& p, int64_t g, uint8_t* dst_rows) {
  const size_t rb = row_bytes(p.type, static_cast<size_t>(p.n_cols));
  const uint8_t* in = p.data + static_cast<size_t>(g) * p.group_bytes;
  for (int r = 0; r < kPackRows; ++r) {
    const int64_t row = g * kPackRows + r;
    if (row >= p.n_rows) break;
    uint8_t* dst = dst_rows + static_cast<size_t>(row) * rb;
    switch (p.type) {
      case DType::Q4_0: {
        auto* blk = reinterpret_cast<BlockQ4_0*>(dst);
        const int64_t nb = p.n_cols / kQK;
        for (int64_t b = 0; b < nb; ++b) {
          const uint8_t* pair = in + (b / 2) * 576;
          const int shift = 4 * static_cast<int>(b % 2);
          for (int e = 0; e < 16; ++e) {
            const int lo = (pair[64 * (e / 4) + 4 * r + e % 4] >> shift) & 15;
            const int hi = (pair[64 * ((e + 16) / 4) + 4 * r + e % 4] >> shift) & 15;
            blk[b].qs[e] = static_cast<uint8_t>(lo | hi << 4);
          }
          blk[b].d = load_u16(pair + 512 + 32 * (b % 2) + 2 * r);
        }
        break;
      }
      case DType::Q8_0: {
        auto* blk = reinterpret_cast<BlockQ8_0*>(dst);
        for (int64_t b = 0; b < p.n_cols / kQK; ++b) {
          const uint8_t* v = in + (b / 2) * 1088 + (b % 2) * 512;
          for (int e = 0; e < 32; ++e) blk[b].qs[e] = static_cast<int8_t>(v[64 * (e / 4) + 4 * r + e % 4] ^ 0x80);
          blk[b].d = load_u16(in + (b / 2) * 1088 + 1024 + 32 * (b % 2) + 2 * r);
        }
        break;
      }
      case DType::Q4_K: {
        auto* blk = reinterpret_cast<BlockQ4_K*>(dst);
        for (int64_t s = 0; s < p.n_cols / kQKK; ++s) {
          const uint8_t* sb = in + s * 2304;
          for (int c = 0; c < 4; ++c)
            for (int j = 0; j < 8; ++j) std::memcpy(blk[s].qs + 32 * c + 4 * j, sb + 512 * c + 64 * j + 4 * r, 4);
          blk[s].d = load_u16(sb + 2048 + 4 * r);
          blk[s].dmin = load_u16(sb + 2048 + 4 * r + 2);
          for (int v = 0; v < 3; ++v) std::memcpy(blk[s].scales + 4 * v, sb + 2112 + 64 * v + 4 * r, 4);
        }
        break;
      }
      case DType::Q6_K: {
        auto* blk = reinterpret_cast<BlockQ6_K*>(dst);
        for (int64_t s = 0; s < p.n_cols / kQKK; ++s) {
          const uint8_t* sb = in + s * 3392;
          int q[256];
          for (int e = 0; e < 256; ++e) {
            const int c = e / 64, lane = (e % 64) % 32, hi_nib = (e % 64) / 32;
            const int lo = (sb[512 * c + 64 * (lane / 4) + 4 * r + lane % 4] >> (4 * hi_nib)) & 15;
            const int h = e / 128, m = (e % 128) / 32, l = e % 32;
            const int top = (sb[2048 + 512 * h + 64 * (l / 4) + 4 * r + l % 4] >> (2 * m)) & 3;
            q[e] = lo | top << 4;
          }
          BlockQ6_K& o = blk[s];
          std::memset(&o, 0, sizeof(o));
          for (int h = 0; h < 2; ++h)
            for (int l = 0; l < 32; ++l) {
              const int* v = q + 128 * h;
              o.ql[64 * h + l] = static_cast<uint8_t>((v[l] & 15) | (v[l + 64] & 15) << 4);
              o.ql[64 * h + l + 32] = static_cast<uint8_t>((v[l + 32] & 15) | (v[l + 96] & 15) << 4);
              o.qh[32 * h + l] =
                  static_cast<uint8_t>((v[l] >> 4) | (v[l + 32] >> 4) << 2 | (v[l + 64] >> 4) << 4 | (v[l + 96] >> 4) << 6);
            }
          for (int k = 0; k < 16; ++k) o.scales[k] = static_cast<int8_t>(sb[3072 + 16 * k + r]);
          o.d = load_u16(sb + 3328 + 2 * r);
        }
        break;
      }
      default: PL_CHECK(false, "unpack_group: no packed layout for {}", dtype_name(p.type));
    }
  }
}

}  // namespace

size_t packed_group_bytes(DType t, int64_t n_cols) {
  switch (t) {
    case DType::Q4_0: return static_cast<size_t>((n_cols / kQK + 1) / 2) * 576;
    case DType::Q8_0: return static_cast<size_t>((n_cols / kQK + 1) / 2) * 1088;
    case DType::Q4_K: return static_cast<size_t>(n_cols / kQKK) * 2304;
    case DType::Q6_K: return static_cast<size_t>(n_cols / kQKK) * 3392;
    default: return 0;
  }
}

void pack_groups(const WeightView& w, int64_t g0, int64_t g1, uint8_t* dst) {
  const size_t gb = packed_group_bytes(w.type, w.n_cols);
  for (int64_t g = g0; g < g1; ++g) pack_group(w, g, dst + static_cast<size_t>(g - g0) * gb);
}

void unpack_groups(const PackedWeights& p, uint8_t* dst) {
  for (int64_t g = 0; g < p.n_groups; ++g) unpack_group(p, g, dst);
}

}  // namespace detail

bool has_packed_kernel(DType t) {
  const detail::TypeTraits* tr = detail::active().traits(t);
  return tr != nullptr && tr->gemm_packed != nullptr && detail::packed_group_bytes(t, detail::block_elems(t)) > 0;
}

namespace {

// Matrices follow one another in an arena at 64-byte boundaries.
constexpr size_t round64(size_t n) { return (n + 63) / 64 * 64; }

// At least n bytes, 64-byte aligned; from 4 MiB on 2 MiB aligned and on
// transparent huge pages (see PackArena). Freed with std::free.
std::shared_ptr<uint8_t> alloc_packed(size_t n) {
  const size_t align = n >= (size_t{4} << 20) ? (size_t{2} << 20) : 64;
  const size_t alloc = std::max<size_t>((n + align - 1) / align * align, align);
  auto* mem = static_cast<uint8_t*>(std::aligned_alloc(align, alloc));
  PL_CHECK(mem != nullptr, "out of memory allocating {} bytes of packed weights", alloc);
  if (align > 64) madvise(mem, alloc, MADV_HUGEPAGE);
  return std::shared_ptr<uint8_t>(mem, [](uint8_t* p) { std::free(p); });
}

}  // namespace

size_t packed_bytes(const WeightView& w) {
  if (!has_packed_kernel(w.type) || w.n_rows <= 0 || w.n_cols <= 0) return 0;
  const int64_t n_groups = (w.n_rows + detail::kPackRows - 1) / detail::kPackRows;
  return round64(static_cast<size_t>(n_groups) * detail::packed_group_bytes(w.type, w.n_cols));
}

PackArena::PackArena(size_t capacity) : mem_(alloc_packed(capacity)), capacity_(capacity) {}

uint8_t* PackArena::take(size_t n) {
  n = round64(n);
  PL_CHECK(n <= capacity_ - used_, "pack arena: {} bytes asked with {} of {} left", n, capacity_ - used_, capacity_);
  uint8_t* p = mem_.get() + used_;
  used_ += n;
  return p;
}

std::unique_ptr<PackedWeights> pack_weights(const WeightView& w, int n_threads, PackArena* arena) {
  if (!has_packed_kernel(w.type)) return nullptr;
  const int64_t bs = detail::block_elems(w.type);
  if (w.n_rows <= 0 || w.n_cols <= 0 || w.n_cols % bs != 0)
    fail("pack_weights: bad shape {} x {} for {}", w.n_rows, w.n_cols, dtype_name(w.type));
  auto p = std::make_unique<PackedWeights>();
  p->type = w.type;
  p->n_rows = w.n_rows;
  p->n_cols = w.n_cols;
  p->n_groups = (w.n_rows + detail::kPackRows - 1) / detail::kPackRows;
  p->group_bytes = detail::packed_group_bytes(w.type, w.n_cols);
  const size_t bytes = p->n_bytes();
  uint8_t* mem = nullptr;
  if (arena != nullptr) {
    mem = arena->take(bytes);
    p->storage = arena->mem_;
  } else {
    auto own = alloc_packed(bytes);
    mem = own.get();
    p->storage = std::move(own);
  }
  p->data = mem;

  const int64_t n_work = std::clamp<int64_t>(static_cast<int64_t>(bytes >> 22), 1, std::max(n_threads, 1));
  auto run = [&](int64_t i) {
    const int64_t g0 = p->n_groups * i / n_work, g1 = p->n_groups * (i + 1) / n_work;
    detail::pack_groups(w, g0, g1, mem + static_cast<size_t>(g0) * p->group_bytes);
  };
  std::vector<std::thread> threads;
  for (int64_t i = 1; i < n_work; ++i) threads.emplace_back(run, i);
  run(0);
  for (std::thread& t : threads) t.join();
  return p;
}

}  // namespace pl::kernels
