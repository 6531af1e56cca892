// Limits shared by the template engines, so that a hostile template can
// neither hang a render nor exhaust memory.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pl::chat {

struct RenderLimits {
  uint64_t max_steps = 10'000'000;
  size_t max_output_bytes = size_t{16} << 20;
  // Cumulative: string bytes written plus 48 bytes per list/dict element made
  // (the context passed in is not counted).
  size_t max_memory_bytes = size_t{64} << 20;
  uint32_t max_call_depth = 32;  // Jinja macro calls
};

}  // namespace pl::chat
