// `parallama inspect FILE.gguf [--json] [--full-arrays]`: metadata and tensor
// table of a GGUF file, for people (like gguf-dump) or machines (--json).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "gguf/gguf.h"

namespace pl::cli {
namespace {

constexpr size_t kShownItems = 8;  // array items shown before "..." unless --full-arrays

std::string quote(const std::string& s) {
  nlohmann::json j = s;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string value_text(const GgufValue& v, bool full) {
  return std::visit(
      [&](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return quote(x);
        } else if constexpr (std::is_same_v<T, GgufArray>) {
          std::string s = "[";
          size_t n = full ? x.items.size() : std::min(x.items.size(), kShownItems);
          for (size_t i = 0; i < n; ++i) s += (i ? ", " : "") + value_text(x.items[i], full);
          if (n < x.items.size()) s += fmt::format(", ... ({} items)", x.items.size());
          return s + "]";
        } else if constexpr (std::is_same_v<T, bool>) {
          return x ? "true" : "false";
        } else if constexpr (std::is_same_v<T, uint8_t> || std::is_same_v<T, int8_t>) {
          return std::to_string(static_cast<int>(x));
        } else {
          return fmt::format("{}", x);
        }
      },
      v.v);
}

nlohmann::json value_json(const GgufValue& v, bool full) {
  return std::visit(
      [&](const auto& x) -> nlohmann::json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, GgufArray>) {
          nlohmann::json a = nlohmann::json::array();
          size_t n = full ? x.items.size() : std::min(x.items.size(), kShownItems);
          for (size_t i = 0; i < n; ++i) a.push_back(value_json(x.items[i], full));
          return a;
        } else {
          return x;
        }
      },
      v.v);
}

std::string shape_text(const GgufTensorInfo& t) {
  std::string s;
  for (size_t i = 0; i < t.shape.size(); ++i) s += (i ? " x " : "") + std::to_string(t.shape[i]);
  return s;
}

void print_text(const GgufFile& f, const std::string& path, bool full) {
  std::printf("%s: GGUF v%u, %zu metadata keys, %zu tensors, alignment %u, data at offset %llu\n", path.c_str(),
              f.version(), f.metadata().size(), f.tensors().size(), f.alignment(),
              static_cast<unsigned long long>(f.data_offset()));
  std::printf("\nmetadata:\n");
  for (const GgufKV& kv : f.metadata()) {
    std::string type(gguf_type_name(kv.value.type()));
    if (kv.value.is_array()) type += fmt::format("[{}]", gguf_type_name(kv.value.array().elem_type));
    std::printf("  %-45s %-15s %s\n", kv.key.c_str(), type.c_str(), value_text(kv.value, full).c_str());
  }
  std::printf("\ntensors:\n  %-5s %-40s %-8s %-24s %14s %14s\n", "#", "name", "type", "shape", "offset", "bytes");
  uint64_t total = 0;
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const GgufTensorInfo& t = f.tensors()[i];
    std::printf("  %-5zu %-40s %-8s %-24s %14llu %14llu\n", i, t.name.c_str(),
                std::string(dtype_name(t.type)).c_str(), shape_text(t).c_str(),
                static_cast<unsigned long long>(t.offset), static_cast<unsigned long long>(t.n_bytes));
    total += t.n_bytes;
  }
  std::printf("\n%zu tensors, %llu bytes of tensor data\n", f.tensors().size(), static_cast<unsigned long long>(total));
}

void print_json(const GgufFile& f, bool full) {
  nlohmann::ordered_json j;
  j["version"] = f.version();
  j["alignment"] = f.alignment();
  j["data_offset"] = f.data_offset();
  nlohmann::ordered_json md = nlohmann::ordered_json::object();
  for (const GgufKV& kv : f.metadata()) {
    nlohmann::ordered_json e;
    e["type"] = gguf_type_name(kv.value.type());
    if (kv.value.is_array()) {
      e["elem_type"] = gguf_type_name(kv.value.array().elem_type);
      e["n_items"] = kv.value.array().items.size();
    }
    e["value"] = value_json(kv.value, full);
    md[kv.key] = e;
  }
  j["metadata"] = md;
  nlohmann::ordered_json ts = nlohmann::ordered_json::array();
  for (const GgufTensorInfo& t : f.tensors())
    ts.push_back({{"name", t.name}, {"type", dtype_name(t.type)}, {"shape", t.shape}, {"offset", t.offset},
                  {"bytes", t.n_bytes}});
  j["tensors"] = ts;
  std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

}  // namespace

void register_inspect(CLI::App& app) {
  struct Options {
    std::string path;
    bool json = false;
    bool full = false;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("inspect", "Show a GGUF file's metadata and tensor table");
  cmd->add_option("file", o->path, "GGUF file")->required();
  cmd->add_flag("--json", o->json, "Print JSON instead of text");
  cmd->add_flag("--full-arrays", o->full, "Print every item of long arrays");
  cmd->callback([o] {
    GgufFile f = GgufFile::open(o->path);
    if (o->json)
      print_json(f, o->full);
    else
      print_text(f, o->path, o->full);
  });
}

}  // namespace pl::cli
