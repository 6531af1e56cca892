// A store laid out by hand the way Ollama writes one (manifest JSON written by
// the test, not by the Store), and the malformed things a real store may hold.
#include <gtest/gtest.h>

#include <fstream>

#include "store/sha256.h"
#include "store_fixture.h"

namespace fs = std::filesystem;
using nlohmann::json;
using pl::test::error_of;

namespace {

struct OllamaStore {
  pl::test::TempDir dir;
  fs::path root = dir.path / "ollama-models";

  // Writes a blob the way Ollama names it and returns its layer JSON.
  json blob(const std::string& media_type, const std::string& bytes) {
    const std::string hex = pl::store::sha256_hex(bytes);
    fs::create_directories(root / "blobs");
    std::ofstream(root / "blobs" / ("sha256-" + hex), std::ios::binary) << bytes;
    return {{"mediaType", media_type}, {"digest", "sha256:" + hex}, {"size", bytes.size()}};
  }
  json gguf_blob(uint64_t seed, std::optional<uint32_t> file_type = std::nullopt) {
    const fs::path tmp = dir.path / "tmp.gguf";
    pl::test::write_tiny_gguf(tmp, "llama", file_type, {{"w", pl::DType::F32, {64, 16}}, {"n", pl::DType::F32, {64}}},
                              seed);
    return blob("application/vnd.ollama.image.model", pl::test::read_file(tmp));
  }
  void manifest(const std::string& rel, const std::string& text) {
    fs::create_directories((root / "manifests" / rel).parent_path());
    std::ofstream(root / "manifests" / rel, std::ios::binary) << text;
  }
};

}  // namespace

TEST(OllamaStore, ReadsAHandWrittenStore) {
  OllamaStore o;
  json model = o.gguf_blob(1);
  json tmpl = o.blob("application/vnd.ollama.image.template", "{{ .System }} {{ .Prompt }}");
  json sys = o.blob("application/vnd.ollama.image.system", "Be brief.");
  json params = o.blob("application/vnd.ollama.image.params", R"({"stop":["<|eot_id|>"],"temperature":0.6})");
  json lic1 = o.blob("application/vnd.ollama.image.license", "LLAMA 3.2 COMMUNITY LICENSE");
  json lic2 = o.blob("application/vnd.ollama.image.license", "Acceptable use policy");
  json msgs = o.blob("application/vnd.ollama.image.messages", R"([{"role":"user","content":"hi"}])");
  json config = o.blob("application/vnd.docker.container.image.v1+json",
                       R"({"model_format":"gguf","model_family":"llama","model_families":["llama"],)"
                       R"("model_type":"3.2B","file_type":"Q4_K_M","architecture":"amd64","os":"linux",)"
                       R"("rootfs":{"type":"layers","diff_ids":[]}})");
  json m = {{"schemaVersion", 2},
            {"mediaType", "application/vnd.docker.distribution.manifest.v2+json"},
            {"config", config},
            {"layers", json::array({model, tmpl, lic1, lic2, params, sys, msgs})}};
  const std::string text = m.dump(2);
  o.manifest("registry.ollama.ai/library/llama3.2/latest", text);

  // A pulled model that has only its weights: details come from the GGUF.
  json bare = o.gguf_blob(2, 15);
  o.manifest("registry.ollama.ai/library/bare/q4",
             json({{"schemaVersion", 2}, {"layers", json::array({bare})}}).dump());

  pl::store::Store s(o.root);
  std::vector<pl::store::ModelInfo> all = s.list();
  ASSERT_EQ(all.size(), 2u);
  pl::store::ModelInfo info = s.get("llama3.2");
  EXPECT_EQ(info.name.display(), "llama3.2:latest");
  EXPECT_EQ(info.digest, pl::store::sha256_hex(text));
  EXPECT_EQ(info.model_path, o.root / "blobs" / ("sha256-" + model["digest"].get<std::string>().substr(7)));
  EXPECT_EQ(*info.template_text, "{{ .System }} {{ .Prompt }}");
  EXPECT_EQ(info.system, "Be brief.");
  EXPECT_EQ(info.params, json::parse(R"({"stop":["<|eot_id|>"],"temperature":0.6})"));
  EXPECT_EQ(info.licenses, (std::vector<std::string>{"LLAMA 3.2 COMMUNITY LICENSE", "Acceptable use policy"}));
  EXPECT_EQ(info.messages, json::parse(R"([{"role":"user","content":"hi"}])"));
  EXPECT_EQ(info.layers.size(), 7u);
  uint64_t size = config["size"].get<uint64_t>();
  for (const json& l : m["layers"]) size += l["size"].get<uint64_t>();
  EXPECT_EQ(info.size, size);
  // The config's details win over the (tiny) GGUF's.
  EXPECT_EQ(info.details.family, "llama");
  EXPECT_EQ(info.details.families, std::vector<std::string>{"llama"});
  EXPECT_EQ(info.details.parameter_size, "3.2B");
  EXPECT_EQ(info.details.quantization_level, "Q4_K_M");

  pl::store::ModelInfo b = s.get("bare:q4");
  EXPECT_EQ(b.details.family, "llama");
  EXPECT_EQ(b.details.parameter_size, "1K");
  EXPECT_EQ(b.details.quantization_level, "Q4_K_M");
  EXPECT_FALSE(b.template_text);
  EXPECT_EQ(b.params, json::object());

  // Deriving a model from it keeps the inherited layers' blobs by digest.
  pl::store::CreateRequest r;
  r.from = "llama3.2";
  r.system = "Be verbose.";
  pl::store::ModelInfo d = s.create("me/verbose", r);
  EXPECT_EQ(d.model_path, info.model_path);
  EXPECT_EQ(d.licenses, info.licenses);
  EXPECT_EQ(d.details.parameter_size, "3.2B");
  EXPECT_EQ(d.details.parent_model, "llama3.2:latest");
  s.remove("llama3.2");
  EXPECT_TRUE(fs::exists(d.model_path));
  EXPECT_FALSE(s.has_blob(sys["digest"].get<std::string>()));
}

TEST(OllamaStore, SkipsMalformedManifests) {
  OllamaStore o;
  json model = o.gguf_blob(1);
  const std::string good = json({{"schemaVersion", 2}, {"layers", json::array({model})}}).dump();
  o.manifest("registry.ollama.ai/library/good/latest", good);

  const std::string missing_blob = "sha256:" + std::string(64, 'a');
  const std::pair<const char*, std::string> bad[] = {
      {"registry.ollama.ai/library/notjson/latest", "{ this is not json"},
      {"registry.ollama.ai/library/array/latest", "[1,2,3]"},
      {"registry.ollama.ai/library/nolayers/latest", R"({"schemaVersion":2})"},
      {"registry.ollama.ai/library/layerstring/latest", R"({"layers":"x"})"},
      {"registry.ollama.ai/library/nomodel/latest",
       json({{"layers", json::array({o.blob("application/vnd.ollama.image.system", "s")})}}).dump()},
      {"registry.ollama.ai/library/missingblob/latest",
       json({{"layers", json::array({{{"mediaType", "application/vnd.ollama.image.model"},
                                      {"digest", missing_blob}, {"size", 1}}})}}).dump()},
      {"registry.ollama.ai/library/traversal/latest",
       R"({"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:../../../etc/passwd","size":1}]})"},
      {"registry.ollama.ai/library/badsize/latest",
       json({{"layers", json::array({{{"mediaType", "application/vnd.ollama.image.model"},
                                      {"digest", model["digest"]}, {"size", -5}}})}}).dump()},
      {"registry.ollama.ai/library/badparams/latest",
       json({{"layers", json::array({model, o.blob("application/vnd.ollama.image.params", "[1]")})}}).dump()},
      {"registry.ollama.ai/library/empty/latest", ""},
      {"registry.ollama.ai/library/good/.latest.tmp-abc123", good},  // a write in flight
      {"registry.ollama.ai/library/toodeep/x/latest", good},
      {"registry.ollama.ai/library/bad name/latest", good},
      {"registry.ollama.ai/shallow", good},
  };
  for (const auto& [rel, text] : bad) o.manifest(rel, text);

  pl::store::Store s(o.root);
  std::vector<pl::store::ModelInfo> all = s.list();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name.display(), "good:latest");

  // Asked for by name, a broken model is an error that says why, not "not found".
  EXPECT_NE(error_of([&] { s.get("notjson"); }).find("model 'notjson:latest': manifest is not a JSON object"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.get("nomodel"); }).find("no model layer"), std::string::npos);
  EXPECT_NE(error_of([&] { s.get("missingblob"); }).find("missing blob " + missing_blob), std::string::npos);
  EXPECT_NE(error_of([&] { s.get("traversal"); }).find("invalid digest"), std::string::npos);
  EXPECT_NE(error_of([&] { s.get("badparams"); }).find("not a JSON object"), std::string::npos);
  try {
    s.get("notjson");
  } catch (const pl::store::NotFoundError&) {
    ADD_FAILURE() << "a malformed model is not a missing one";
  } catch (const pl::Error&) {
  }
  // Removing a malformed model still works, and it collects nothing another manifest names.
  s.remove("notjson");
  s.remove("missingblob");
  EXPECT_TRUE(s.has_blob(model["digest"].get<std::string>()));
  EXPECT_EQ(s.list().size(), 1u);
}
