// attn_tile: the scalar reference, the scratch size, and the dispatch to the
// active level's version (avx2_attn.cpp, avx512_attn.cpp).
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "kernels/attn_simd.h"
#include "kernels/fp16.h"
#include "kernels/kernels.h"

namespace pl::kernels {
namespace detail {
namespace avx2 {
void attn_tile(const AttnTileArgs& a, float* scratch);
}
namespace avx512 {
void attn_tile(const AttnTileArgs& a, float* scratch);
}

namespace {

// One row at a time, one key at a time, in float with std::exp: the
// straightforward online softmax the SIMD levels are tested against.
void attn_tile_ref(const AttnTileArgs& a, float* scratch) {
  const int D = a.head_dim, B = a.block_size;
  float* acc = scratch;       // [D]
  float* sc = scratch + D;    // [kKeys]
  for (int i = 0; i < a.n_tok; ++i) {
    const int32_t n_keys = a.pos[i] + 1;
    for (int g = 0; g < a.n_group; ++g) {
      const float* q = a.q + i * a.ldq + g * D;
      float m = -std::numeric_limits<float>::infinity(), l = 0.0f;
      std::fill(acc, acc + D, 0.0f);
      // Same sub-blocks as the SIMD levels (up to kKeys keys, never across a KV block).
      for (int b = 0; b * B < n_keys; ++b) {
        const uint16_t* kblk = a.k + a.block_table[b] * a.block_stride;  // [D][B]
        const uint16_t* vblk = a.v + a.block_table[b] * a.block_stride;  // [B][D]
        for (int j0 = 0; j0 < B && b * B + j0 < n_keys; j0 += kKeys) {
          const int n = std::min({kKeys, B - j0, n_keys - (b * B + j0)});
          float bmax = -std::numeric_limits<float>::infinity();
          for (int j = 0; j < n; ++j) {
            float s = 0.0f;
            for (int d = 0; d < D; ++d) s += q[d] * half_to_float(kblk[static_cast<size_t>(d) * B + j0 + j]);
            sc[j] = s * a.scale;
            bmax = std::max(bmax, sc[j]);
          }
          const float m_new = std::max(m, bmax);
          const float corr = std::exp(m - m_new);  // rescales what was accumulated under the old max
          for (int d = 0; d < D; ++d) acc[d] *= corr;
          float sum = 0.0f;
          for (int j = 0; j < n; ++j) {
            const float p = std::exp(sc[j] - m_new);
            sum += p;
            const uint16_t* vr = vblk + static_cast<size_t>(j0 + j) * D;
            for (int d = 0; d < D; ++d) acc[d] += p * half_to_float(vr[d]);
          }
          l = l * corr + sum;
          m = m_new;
        }
      }
      float* out = a.out + i * a.ldo + g * D;
      for (int d = 0; d < D; ++d) out[d] = acc[d] / l;
    }
  }
}

}  // namespace
}  // namespace detail

size_t attn_tile_scratch_floats(int head_dim, int n_tok, int n_group) {
  return detail::AttnScratchLayout(head_dim, n_tok * n_group).total;
}

void attn_tile(const AttnTileArgs& a, float* scratch) {
  PL_CHECK(a.n_tok > 0 && a.n_group > 0 && a.head_dim > 0 && a.block_size > 0, "attn_tile: empty tile");
  for (int i = 1; i < a.n_tok; ++i)
    PL_CHECK(a.pos[i] > a.pos[i - 1], "attn_tile: positions not increasing ({} then {})", a.pos[i - 1], a.pos[i]);
  switch (cpu_level()) {
    case CpuLevel::Avx512: return detail::avx512::attn_tile(a, scratch);
    case CpuLevel::Avx2: return detail::avx2::attn_tile(a, scratch);
    case CpuLevel::Scalar: return detail::attn_tile_ref(a, scratch);
  }
}

}  // namespace pl::kernels
