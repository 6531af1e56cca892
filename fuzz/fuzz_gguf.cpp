// libFuzzer target for the GGUF reader: any byte string either parses into a
// file whose every tensor lies inside the buffer, or throws GgufError. Built
// with ASan+UBSan, so an out-of-bounds read or overflow is a crash here.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  try {
    pl::GgufFile f = pl::GgufFile::parse(bytes);
    volatile uint8_t sink = 0;
    for (const pl::GgufTensorInfo& t : f.tensors()) {
      if (t.n_bytes > 0) sink = sink + t.data[0] + t.data[t.n_bytes - 1];
    }
    for (const pl::GgufKV& kv : f.metadata()) {
      (void)f.get_opt<std::string>("general.architecture");
      if (kv.value.is_array()) (void)kv.value.array().items.size();
    }
    // What parses must write back, parse again, and write back to the same bytes (compared as bytes, not
    // values: a NaN float round-trips bit for bit but never compares equal).
    std::vector<uint8_t> again = pl::GgufWriter::from_file(f).to_bytes();
    pl::GgufFile g = pl::GgufFile::parse(again);
    if (g.metadata().size() != f.metadata().size() || g.tensors().size() != f.tensors().size()) std::abort();
    if (pl::GgufWriter::from_file(g).to_bytes() != again) std::abort();
  } catch (const pl::GgufError&) {
  } catch (const pl::Error&) {
  }
  return 0;
}
