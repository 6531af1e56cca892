// The manifest half of the store: reading models, creating, copying and
// removing them. Blob plumbing lives in blobs.cpp, names in name.cpp.
#include "store/store.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>

#include "core/env.h"
#include "gguf/gguf.h"
#include "store/details.h"
#include "store/internal.h"
#include "store/sha256.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace pl::store {
namespace {

constexpr std::string_view kManifestMediaType = "application/vnd.docker.distribution.manifest.v2+json";
constexpr std::string_view kConfigMediaType = "application/vnd.docker.container.image.v1+json";
constexpr std::string_view kModel = "application/vnd.ollama.image.model";
constexpr std::string_view kTemplate = "application/vnd.ollama.image.template";
constexpr std::string_view kSystem = "application/vnd.ollama.image.system";
constexpr std::string_view kParams = "application/vnd.ollama.image.params";
constexpr std::string_view kLicense = "application/vnd.ollama.image.license";
constexpr std::string_view kMessages = "application/vnd.ollama.image.messages";

// Manifests and text layers are small; these caps keep a corrupt or hostile
// store from making us read a multi-GB blob as a "template".
constexpr uint64_t kMaxManifestBytes = 4 << 20;
constexpr uint64_t kMaxTextLayerBytes = 64 << 20;

struct Manifest {
  std::optional<Layer> config;
  std::vector<Layer> layers;
};

Layer parse_layer(const json& j, std::string_view what) {
  if (!j.is_object()) fail("manifest {}: not an object", what);
  Layer l;
  auto mt = j.find("mediaType");
  auto dg = j.find("digest");
  auto sz = j.find("size");
  if (mt == j.end() || !mt->is_string()) fail("manifest {}: no mediaType", what);
  if (dg == j.end() || !dg->is_string()) fail("manifest {}: no digest", what);
  if (sz != j.end() && !sz->is_number_unsigned() && !(sz->is_number_integer() && sz->get<int64_t>() >= 0))
    fail("manifest {}: bad size", what);
  l.media_type = mt->get<std::string>();
  l.digest = detail::normalize_digest(dg->get<std::string>());
  l.size = sz == j.end() ? 0 : sz->get<uint64_t>();
  return l;
}

Manifest parse_manifest(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) fail("manifest is not a JSON object");
  Manifest m;
  if (auto c = j.find("config"); c != j.end() && !c->is_null()) m.config = parse_layer(*c, "config");
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array()) fail("manifest has no layers array");
  for (size_t i = 0; i < layers->size(); ++i) m.layers.push_back(parse_layer((*layers)[i], fmt::format("layer {}", i)));
  return m;
}

// JSON we write from user text: invalid UTF-8 (a Modelfile is bytes) is an input error.
std::string dump_json(const json& j, std::string_view what) {
  try {
    return j.dump();
  } catch (const json::exception&) {
    fail("{} contain text that is not valid UTF-8", what);
  }
}

json layer_json(const Layer& l) { return {{"mediaType", l.media_type}, {"digest", l.digest}, {"size", l.size}}; }

std::string manifest_text(const Layer& config, const std::vector<Layer>& layers) {
  json j = {{"schemaVersion", 2}, {"mediaType", kManifestMediaType}, {"config", layer_json(config)}};
  j["layers"] = json::array();
  for (const Layer& l : layers) j["layers"].push_back(layer_json(l));
  return j.dump();
}

std::string rfc3339_utc(fs::file_time_type t) {
  auto sys = std::chrono::file_clock::to_sys(t);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(sys.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000 - (us % 1000000 < 0 ? 1 : 0));
  long frac = static_cast<long>(((us % 1000000) + 1000000) % 1000000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

// Opens and checks a would-be model file; `label` is what the user called it.
ModelDetails inspect_gguf(const fs::path& p, std::string_view label) {
  try {
    GgufFile f = GgufFile::open(p.string());
    if (f.tensors().empty()) fail("no tensors (a vocabulary-only file?)");
    return details_from_gguf(f);
  } catch (const Error& e) {
    fail("invalid model file '{}': {}", label, e.what());
  }
}

bool looks_like_path(std::string_view s) {
  return s.find('/') != std::string_view::npos || s.starts_with('.') || s.starts_with('~') || s.ends_with(".gguf") ||
         s.ends_with(".bin");
}

void erase_media(std::vector<Layer>& layers, std::string_view media_type) {
  std::erase_if(layers, [&](const Layer& l) { return l.media_type == media_type; });
}

void check_messages(const json& messages) {
  if (!messages.is_array()) fail("messages must be a JSON array");
  for (const json& m : messages) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      fail("each message needs a string 'role' and 'content', got {}", m.dump().substr(0, 200));
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant")
      fail("message role must be system, user or assistant, got '{}'", role);
  }
}

// Drops empty directories from `dir` up to (not including) `stop`.
void remove_empty_dirs(fs::path dir, const fs::path& stop) {
  std::error_code ec;
  while (dir != stop && dir.string().size() > stop.string().size() && fs::is_empty(dir, ec) && !ec) {
    if (!fs::remove(dir, ec)) break;
    dir = dir.parent_path();
  }
}

}  // namespace

Store::Store(fs::path root) : root_(std::move(root)) {}

fs::path Store::default_root() {
  if (auto env = env_var("OLLAMA_MODELS")) return *env;
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') fail("cannot place the model store: neither OLLAMA_MODELS nor HOME is set");
  return fs::path(home) / ".parallama" / "models";
}

namespace {

// Reads one model. Throws pl::Error for anything malformed or missing, naming the model.
ModelInfo read_model(const Store& store, const ModelName& name) {
  const fs::path path = store.root() / "manifests" / name.manifest_path();
  const std::string display = name.display();
  try {
    const std::string text = detail::read_file_limited(path, kMaxManifestBytes);
    Manifest m = parse_manifest(text);
    ModelInfo info;
    info.name = name;
    info.digest = sha256_hex(text);
    info.modified_at = rfc3339_utc(fs::last_write_time(path));
    info.layers = m.layers;
    if (m.config) info.size += m.config->size;
    for (const Layer& l : m.layers) {
      info.size += l.size;
      if (!store.has_blob(l.digest)) fail("missing blob {}", l.digest);
      auto text_of = [&] { return detail::read_file_limited(store.blob_path(l.digest), kMaxTextLayerBytes); };
      if (l.media_type == kModel) {
        if (info.model_path.empty()) info.model_path = store.blob_path(l.digest);
      } else if (l.media_type == kTemplate) {
        info.template_text = text_of();
      } else if (l.media_type == kSystem) {
        info.system = text_of();
      } else if (l.media_type == kLicense) {
        info.licenses.push_back(text_of());
      } else if (l.media_type == kParams) {
        info.params = json::parse(text_of(), nullptr, false);
        if (!info.params.is_object()) fail("params layer {} is not a JSON object", l.digest);
      } else if (l.media_type == kMessages) {
        info.messages = json::parse(text_of(), nullptr, false);
        if (!info.messages.is_array()) fail("messages layer {} is not a JSON array", l.digest);
      }
      // Other layer types (projector, adapter, ...) are carried along but not used.
    }
    if (info.model_path.empty()) fail("no model layer");

    // Ollama writes the details into the config blob; a store that lacks them
    // (or a manifest with the model layer only) gets them from the GGUF.
    json config;
    if (m.config && store.has_blob(m.config->digest)) {
      try {
        config = json::parse(detail::read_file_limited(store.blob_path(m.config->digest), kMaxManifestBytes), nullptr,
                             false);
      } catch (const Error&) {
      }
    }
    auto str = [&](const char* key) {
      return config.is_object() && config.contains(key) && config[key].is_string() ? config[key].get<std::string>()
                                                                                   : std::string();
    };
    ModelDetails& d = info.details;
    if (std::string f = str("model_format"); !f.empty()) d.format = f;
    d.family = str("model_family");
    d.parameter_size = str("model_type");
    d.quantization_level = str("file_type");
    d.parent_model = str("parent_model");
    if (config.is_object() && config.contains("model_families") && config["model_families"].is_array())
      for (const json& f : config["model_families"])
        if (f.is_string()) d.families.push_back(f.get<std::string>());
    if (d.family.empty() || d.parameter_size.empty() || d.quantization_level.empty()) {
      try {
        ModelDetails g = details_from_gguf(GgufFile::open(info.model_path.string()));
        if (d.family.empty()) d.family = g.family;
        if (d.families.empty()) d.families = g.families;
        if (d.parameter_size.empty()) d.parameter_size = g.parameter_size;
        if (d.quantization_level.empty()) d.quantization_level = g.quantization_level;
      } catch (const Error&) {
        // The details are informational; a bad GGUF is reported when the model loads.
      }
    }
    return info;
  } catch (const json::exception& e) {
    fail("model '{}': {}", display, e.what());
  } catch (const Error& e) {
    fail("model '{}': {}", display, e.what());
  } catch (const fs::filesystem_error& e) {
    fail("model '{}': {}", display, e.what());
  }
}

}  // namespace

std::vector<ModelInfo> Store::list() const {
  std::vector<ModelInfo> out;
  const fs::path dir = root_ / "manifests";
  // Exactly four levels, host/ns/model/tag; anything else in the tree is not a manifest.
  auto subdirs = [&](const fs::path& p, bool want_files) {
    std::vector<std::string> names;
    std::error_code e;
    for (fs::directory_iterator it(p, e), end; !e && it != end; it.increment(e))
      if (want_files ? it->is_regular_file(e) : it->is_directory(e)) names.push_back(it->path().filename().string());
    return names;
  };
  for (const std::string& host : subdirs(dir, false))
    for (const std::string& ns : subdirs(dir / host, false))
      for (const std::string& model : subdirs(dir / host / ns, false))
        for (const std::string& tag : subdirs(dir / host / ns / model, true)) {
          try {
            ModelName n = ModelName::parse(host + "/" + ns + "/" + model + ":" + tag);
            if (n.host != host || n.ns != ns || n.model != model || n.tag != tag) continue;
            out.push_back(read_model(*this, n));
          } catch (const Error&) {
            // A malformed manifest, a temp file or a broken model: not listed.
          }
        }
  std::sort(out.begin(), out.end(), [](const ModelInfo& a, const ModelInfo& b) {
    // Fixed-width UTC timestamps compare as strings.
    if (a.modified_at != b.modified_at) return a.modified_at > b.modified_at;
    return a.name.display() < b.name.display();
  });
  return out;
}

std::optional<ModelInfo> Store::find(std::string_view name) const {
  const ModelName n = ModelName::parse(name);
  std::error_code ec;
  if (!fs::is_regular_file(root_ / "manifests" / n.manifest_path(), ec)) return std::nullopt;
  return read_model(*this, n);
}

ModelInfo Store::get(std::string_view name) const {
  std::optional<ModelInfo> m = find(name);
  if (!m) throw NotFoundError(fmt::format("model '{}' not found", name));
  return *m;
}

namespace {

// Stores `bytes` as a blob; true when it was new.
std::pair<Layer, bool> put_bytes(Store& store, std::string_view media_type, std::string_view bytes) {
  Layer l{std::string(media_type), "sha256:" + sha256_hex(bytes), bytes.size()};
  if (store.has_blob(l.digest)) return {l, false};
  detail::write_file_atomic(store.blob_path(l.digest), bytes);
  return {l, true};
}

}  // namespace

ModelInfo Store::create(std::string_view name, const CreateRequest& req, const fs::path& base_dir,
                        const std::function<void(const std::string&)>& progress) {
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };
  auto say_layer = [&](const std::string& digest, bool is_new) {
    say((is_new ? "creating new layer " : "using existing layer ") + digest);
  };
  const ModelName target = ModelName::parse(name);
  // Everything cheap is checked before a multi-GB file is copied.
  const json new_params = normalize_parameters(req.parameters);
  dump_json(new_params, "parameters");
  if (req.messages) {
    check_messages(*req.messages);
    dump_json(*req.messages, "messages");
  }

  std::vector<Layer> layers;
  ModelDetails details;
  json params = json::object();
  if (!req.files.empty()) {
    if (!req.from.empty()) fail("give either 'from' or 'files', not both");
    if (req.files.size() != 1) fail("expected one GGUF file in 'files', got {}", req.files.size());
    const auto& [file_name, file_digest] = *req.files.begin();
    const std::string digest = detail::normalize_digest(file_digest);
    if (!has_blob(digest)) fail("blob {} for '{}' not found: upload it first", digest, file_name);
    say("parsing GGUF");
    details = inspect_gguf(blob_path(digest), file_name);
    layers.push_back({std::string(kModel), digest, fs::file_size(blob_path(digest))});
    say_layer(digest, false);
  } else if (req.from.empty()) {
    fail("no FROM given: name a model or a GGUF file");
  } else {
    std::optional<ModelInfo> base;
    bool is_name = true;
    try {
      ModelName::parse(req.from);
    } catch (const Error&) {
      is_name = false;
    }
    // An existing model wins over a file of the same name, as in Ollama.
    if (is_name) base = find(req.from);
    if (base) {
      layers = base->layers;
      params = base->params;
      details = base->details;
      details.parent_model = base->name.display();
      for (const Layer& l : layers) say_layer(l.digest, false);
    } else {
      fs::path p = req.from;
      if (req.from.starts_with("~/")) {
        const char* home = std::getenv("HOME");
        if (home != nullptr) p = fs::path(home) / req.from.substr(2);
      }
      if (p.is_relative() && !base_dir.empty()) p = base_dir / p;
      std::error_code ec;
      if (!fs::is_regular_file(p, ec)) {
        if (is_name && !looks_like_path(req.from)) throw NotFoundError(fmt::format("model '{}' not found", req.from));
        fail("FROM '{}': no model of that name and no file '{}'", req.from, p.string());
      }
      say("parsing GGUF");
      details = inspect_gguf(p, req.from);
      const std::string digest = "sha256:" + sha256_file_hex(p);
      const bool is_new = !has_blob(digest);
      if (is_new) put_blob(digest, p);
      layers.push_back({std::string(kModel), digest, fs::file_size(p)});
      say_layer(digest, is_new);
    }
  }

  auto add_text = [&](std::string_view media_type, std::string_view bytes) {
    auto [l, is_new] = put_bytes(*this, media_type, bytes);
    layers.push_back(l);
    say_layer(l.digest, is_new);
  };
  if (req.template_text) {
    erase_media(layers, kTemplate);
    add_text(kTemplate, *req.template_text);
  }
  if (req.system) {
    erase_media(layers, kSystem);
    add_text(kSystem, *req.system);
  }
  if (req.license) {
    erase_media(layers, kLicense);
    for (const std::string& l : *req.license) add_text(kLicense, l);
  }
  if (!new_params.empty()) {
    params.update(new_params);  // key by key: a new stop list replaces the old one
    erase_media(layers, kParams);
    add_text(kParams, dump_json(params, "parameters"));
  }
  if (req.messages) {
    erase_media(layers, kMessages);
    add_text(kMessages, dump_json(*req.messages, "messages"));
  }

  json config = {{"model_format", details.format},
                 {"model_family", details.family},
                 {"model_families", details.families},
                 {"model_type", details.parameter_size},
                 {"file_type", details.quantization_level},
                 {"architecture", "amd64"},
                 {"os", "linux"}};
  if (!details.parent_model.empty()) config["parent_model"] = details.parent_model;
  config["rootfs"] = {{"type", "layers"}, {"diff_ids", json::array()}};
  for (const Layer& l : layers) config["rootfs"]["diff_ids"].push_back(l.digest);
  // The details come from the GGUF's metadata; a stray byte there is not worth refusing the model.
  const Layer config_layer =
      put_bytes(*this, kConfigMediaType, config.dump(-1, ' ', false, json::error_handler_t::replace)).first;

  say("writing manifest");
  const fs::path manifest = root_ / "manifests" / target.manifest_path();
  std::set<std::string> old_digests;
  std::error_code ec;
  if (fs::is_regular_file(manifest, ec)) {
    try {
      old_digests = detail::digests_in(detail::read_file_limited(manifest, kMaxManifestBytes));
    } catch (const Error&) {
    }
  }
  detail::write_file_atomic(manifest, manifest_text(config_layer, layers));
  // Overwriting a model may orphan the layers it replaced, as remove() would.
  if (!old_digests.empty()) {
    const std::set<std::string> keep = detail::referenced_digests(root_ / "manifests");
    for (const std::string& d : old_digests)
      if (!keep.contains(d)) fs::remove(blob_path(d), ec);
  }
  say("success");
  return get(name);
}

void Store::copy(std::string_view src, std::string_view dst) {
  const ModelName s = ModelName::parse(src);
  const ModelName d = ModelName::parse(dst);
  const fs::path from = root_ / "manifests" / s.manifest_path();
  std::error_code ec;
  if (!fs::is_regular_file(from, ec)) throw NotFoundError(fmt::format("model '{}' not found", src));
  if (s == d) return;
  detail::write_file_atomic(root_ / "manifests" / d.manifest_path(), detail::read_file_limited(from, kMaxManifestBytes));
}

void Store::remove(std::string_view name) {
  const ModelName n = ModelName::parse(name);
  const fs::path manifests = root_ / "manifests";
  const fs::path p = manifests / n.manifest_path();
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) throw NotFoundError(fmt::format("model '{}' not found", name));
  // Read it as text, not JSON: even a manifest we cannot parse has its blobs collected.
  const std::set<std::string> candidates = detail::digests_in(detail::read_file_limited(p, kMaxManifestBytes));
  if (!fs::remove(p, ec) || ec) fail("cannot remove '{}': {}", p.string(), ec.message());
  remove_empty_dirs(p.parent_path(), manifests);
  const std::set<std::string> keep = detail::referenced_digests(manifests);
  for (const std::string& d : candidates)
    if (!keep.contains(d)) fs::remove(blob_path(d), ec);
}

}  // namespace pl::store
