// The model store: Ollama's on-disk layout, so an existing ~/.ollama/models
// works as it is.
//
//   <root>/manifests/<host>/<namespace>/<model>/<tag>   a JSON manifest (schemaVersion 2)
//   <root>/blobs/sha256-<64 hex>                        content-addressed layers
//
// A manifest's layers carry media types application/vnd.ollama.image.{model,
// template,system,params,license,messages}; its config blob is
// application/vnd.docker.container.image.v1+json (model_format, model_family,
// model_type, file_type). Names resolve like Ollama's: "llama3.2" is
// registry.ollama.ai/library/llama3.2:latest; "me/x:1" is registry.ollama.ai/me/x:1.
//
// Writes are atomic (temp file + rename); blobs are verified by their digest when
// imported. The store holds no lock across calls: the server serialises writes.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace pl::store {

// Unknown model: the server answers 404 with this message.
class NotFoundError : public Error {
 public:
  using Error::Error;
};

struct ModelName {
  std::string host = "registry.ollama.ai";
  std::string ns = "library";
  std::string model;
  std::string tag = "latest";

  // Parses "model", "model:tag", "ns/model[:tag]", "host/ns/model[:tag]".
  // Throws pl::Error for invalid names (empty parts, characters outside
  // [A-Za-z0-9._-] (host may also hold ':' for a port), a part starting with
  // '.' or '-', "..", overlong parts): a name can never escape the store.
  static ModelName parse(std::string_view s);
  // The short form Ollama shows: "llama3.2:latest", "me/x:1", "host/ns/x:1".
  std::string display() const;
  // host/ns/model/tag, relative to <root>/manifests.
  std::filesystem::path manifest_path() const;
  bool operator==(const ModelName&) const = default;
};

struct Layer {
  std::string media_type;
  std::string digest;  // "sha256:<hex>"
  uint64_t size = 0;
};

struct ModelDetails {
  std::string format = "gguf";
  std::string family;              // general.architecture
  std::vector<std::string> families;
  std::string parameter_size;      // "1.1B", "260K" (from the tensor element count)
  std::string quantization_level;  // "Q4_0", "Q4_K_M", "F16" (from general.file_type or the tensors)
  std::string parent_model;
};

struct ModelInfo {
  ModelName name;
  std::string digest;        // sha256 hex of the manifest bytes
  uint64_t size = 0;         // sum of the layer sizes and the config blob's, as Ollama counts it
  std::string modified_at;   // RFC 3339 in UTC with microseconds, the manifest file's mtime
  std::filesystem::path model_path;  // the GGUF blob
  std::vector<Layer> layers;
  std::optional<std::string> template_text;  // the template layer, if any
  std::string system;                        // the system layer, or ""
  nlohmann::json params = nlohmann::json::object();    // the params layer (Ollama option names)
  std::vector<std::string> licenses;
  nlohmann::json messages = nlohmann::json::array();   // [{"role","content"}]
  ModelDetails details;
};

// What /api/create asks for (the JSON API), also what a parsed Modelfile gives.
struct CreateRequest {
  std::string from;                                  // an existing model name, or a GGUF path (absolute, or relative to base_dir)
  std::map<std::string, std::string> files;          // file name -> "sha256:<hex>" of an uploaded blob (a GGUF)
  std::optional<std::string> template_text;
  std::optional<std::string> system;
  nlohmann::json parameters = nlohmann::json::object();  // merged over the base model's
  std::optional<std::vector<std::string>> license;
  std::optional<nlohmann::json> messages;
};

// A Modelfile (FROM, PARAMETER, TEMPLATE, SYSTEM, MESSAGE, LICENSE; ADAPTER,
// DRAFT, RENDERER and PARSER are rejected, REQUIRES is accepted and ignored):
// instructions are case-insensitive, values may be """multi-line""" or "quoted",
// '#' starts a comment line. PARAMETER values are typed by Ollama's option table
// (num_ctx int, temperature float, stop string list, ...); repeated stop lines
// add up. Errors are pl::Error "line N: ..." (or "no FROM line in the Modelfile").
CreateRequest parse_modelfile(std::string_view text);
// Ollama's option table, for PARAMETER lines and request "options" alike: each
// option's JSON type, the runner's name for it (nullptr where the server uses
// it itself or it has no effect here) and whether it has an effect.
enum class OptionType { Int, Float, Bool, StringList };
struct OllamaOption {
  OptionType type;
  const char* runner_name;
  bool effective;
};
const std::map<std::string, OllamaOption>& ollama_options();
// "int" | "float" | "bool" | "string_list"
const char* option_type_name(OptionType t);
// One PARAMETER value from text: an int/float/bool JSON value, or a one-element
// array for a string list. pl::Error for an unknown name or a bad value.
nlohmann::json parse_parameter(const std::string& name, std::string_view value);
// Checks a JSON options object against the table and gives it canonical types:
// numbers and bools given as strings are parsed, an integral float becomes an
// int, a single stop string becomes a list, nulls are dropped. pl::Error names
// the offending parameter (unknown names are errors).
nlohmann::json normalize_parameters(const nlohmann::json& params);

class Store;

// Streams an upload straight into the blob store, hashing as it goes, so a
// multi-GB upload is written once. Nothing is visible until commit() has checked
// the digest; a writer destroyed without a commit removes its temp file.
class BlobWriter {
 public:
  ~BlobWriter();
  BlobWriter(BlobWriter&&) noexcept;
  BlobWriter& operator=(BlobWriter&&) = delete;

  void write(const void* data, size_t n);
  // pl::Error ("digest mismatch: expected ..., got ...") when the bytes written
  // do not hash to `digest`; the data is discarded either way on failure.
  void commit(std::string_view digest);
  uint64_t n_bytes() const;

 private:
  friend class Store;
  struct Impl;
  explicit BlobWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Store {
 public:
  explicit Store(std::filesystem::path root);
  // OLLAMA_MODELS, else ~/.parallama/models.
  static std::filesystem::path default_root();
  const std::filesystem::path& root() const { return root_; }

  // Every readable model, newest first (ties by name). Manifests that do not
  // parse, name a missing blob or have no model layer are skipped, not errors.
  std::vector<ModelInfo> list() const;
  // nullopt when there is no manifest; pl::Error for an invalid name or a
  // manifest that is there but broken ("model 'x:latest': missing blob ...").
  std::optional<ModelInfo> find(std::string_view name) const;
  ModelInfo get(std::string_view name) const;   // as find, but NotFoundError "model 'x' not found"

  // Builds a model: layers of the base (req.from names a model in the store),
  // or a new model blob (req.from is a GGUF path: absolute, "~/...", or relative
  // to base_dir, else to the working directory; or req.files holds one uploaded
  // GGUF blob). Then the given template/system/license/messages replace the
  // base's and the parameters are merged over the base's key by key. Parameters
  // and messages are checked before anything is copied. Re-creating an existing
  // name replaces it and collects the blobs only the old version used.
  // progress gets Ollama-style status lines ("parsing GGUF", "using existing
  // layer sha256:...", "creating new layer sha256:...", "writing manifest", "success").
  // Throws pl::Error ("invalid model file 'x': ...", missing blob, bad parameter)
  // or NotFoundError "model 'x' not found" (FROM a plain name that is neither a
  // model nor a file).
  ModelInfo create(std::string_view name, const CreateRequest& req, const std::filesystem::path& base_dir = {},
                   const std::function<void(const std::string&)>& progress = {});
  // Copies the manifest (same digest); NotFoundError when src does not exist.
  void copy(std::string_view src, std::string_view dst);
  // Removes the manifest, then those of its blobs that no other manifest
  // references (a blob named anywhere in any manifest file is kept, so even a
  // manifest we cannot parse protects its blobs).
  void remove(std::string_view name);

  // Blobs: "sha256:<hex>" (or "sha256-<hex>") -> path; has_blob checks existence;
  // put_blob stores the bytes of `src` after checking their digest (pl::Error on mismatch).
  std::filesystem::path blob_path(std::string_view digest) const;
  bool has_blob(std::string_view digest) const;
  void put_blob(std::string_view digest, const std::filesystem::path& src);
  // Copies a file into the blob store; returns "sha256:<hex>".
  std::string import_file(const std::filesystem::path& src);
  BlobWriter begin_blob();
  // Removes every blob that no manifest mentions (Ollama's start-up prune);
  // returns how many. Only safe while no create or upload is in flight (at
  // start-up). remove() collects just the removed model's own blobs, so an
  // upload waiting for its /api/create is never taken by someone else's delete.
  size_t prune_blobs();

 private:
  std::filesystem::path root_;
};

}  // namespace pl::store
