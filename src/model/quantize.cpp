#include "model/quantize.h"

#include <new>
#include <vector>

#include "core/error.h"
#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "kernels/kernels.h"
#include "kernels/thread_pool.h"
#include "model/file_type.h"

namespace pl {

std::string quantize_model(const std::string& in_path, const std::string& out_path, const std::string& type_name,
                           int n_threads) {
  std::optional<FileType> ft = file_type_from_name(type_name);
  if (!ft) fail("unknown quantization type '{}' (expected one of {})", type_name, file_type_names());
  check_output_path(out_path);  // before the work, not after
  GgufFile in = GgufFile::open(in_path);
  const int n_layer = with_file_context(in_path, [&] {
    const std::string arch = in.get<std::string>("general.architecture");
    return in.get_or<int>(arch + ".block_count", 0);
  });

  GgufWriter w;
  for (const GgufKV& kv : in.metadata()) w.set(kv.key, kv.value);
  w.set("general.file_type", ft->gguf_id);
  w.set("general.quantization_version", uint32_t{2});

  ThreadPool pool(n_threads);
  TypeChooser types(*ft, n_layer);
  for (const GgufTensorInfo& t : in.tensors()) {
    const DType to = types.choose(t.name, static_cast<int>(t.shape.size()), t.shape[0]);
    if (to == t.type) {
      w.add_tensor(t.name, t.type, t.shape, t.bytes());  // referenced from the map, not copied
      continue;
    }
    if (!kernels::is_supported(t.type) && t.type != DType::F32)
      fail("{}: tensor '{}': cannot convert from {}", in_path, t.name, dtype_name(t.type));
    if (!kernels::can_quantize(to)) fail("tensor '{}': cannot convert to {}", t.name, dtype_name(to));
    const uint64_t ne0 = t.shape[0];
    const uint64_t n_rows = t.n_elements / ne0;
    const size_t in_rb = row_bytes(t.type, ne0), out_rb = row_bytes(to, ne0);
    std::vector<uint8_t> out;
    try {
      out.resize(out_rb * n_rows);
    } catch (const std::bad_alloc&) {
      fail("cannot allocate {} bytes for tensor '{}' as {}", out_rb * n_rows, t.name, dtype_name(to));
    }
    pool.run([&](int ith, int nth) {
      std::vector<float> row(ne0);
      for (uint64_t r = ith; r < n_rows; r += nth) {
        kernels::dequantize_row(t.type, t.data + r * in_rb, row.data(), static_cast<int64_t>(ne0));
        kernels::quantize_row(to, row.data(), out.data() + r * out_rb, static_cast<int64_t>(ne0));
      }
    });
    w.add_tensor(t.name, to, t.shape, std::move(out));
  }
  w.write(out_path);
  return types.notes();
}

}  // namespace pl
