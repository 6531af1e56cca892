#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>

#include "gguf/gguf.h"
#include "store/details.h"
#include "store/sha256.h"
#include "store_fixture.h"

namespace fs = std::filesystem;
using nlohmann::json;
using pl::store::CreateRequest;
using pl::store::ModelInfo;
using pl::test::error_of;
using pl::test::kTestdata;
using pl::test::StoreFixture;

namespace {

CreateRequest from(const std::string& f) {
  CreateRequest r;
  r.from = f;
  return r;
}

bool has_line(const std::vector<std::string>& lines, const std::string& prefix) {
  for (const std::string& l : lines)
    if (l.rfind(prefix, 0) == 0) return true;
  return false;
}

std::string manifest_of(const StoreFixture& f, const std::string& name) {
  return pl::test::read_file(f.store.root() / "manifests" / pl::store::ModelName::parse(name).manifest_path());
}

}  // namespace

TEST(Store, CreateFromGgufPath) {
  REQUIRE_TESTDATA();
  StoreFixture f;
  const fs::path src = kTestdata / "models/stories260K.gguf";
  std::vector<std::string> status;
  ModelInfo m = f.store.create("stories", from(src.string()), {}, [&](const std::string& s) { status.push_back(s); });
  const std::string digest = "sha256:" + pl::store::sha256_file_hex(src);
  EXPECT_EQ(status, (std::vector<std::string>{"parsing GGUF", "creating new layer " + digest, "writing manifest",
                                              "success"}));
  EXPECT_EQ(m.name.display(), "stories:latest");
  EXPECT_EQ(m.model_path, f.store.blob_path(digest));
  EXPECT_EQ(fs::file_size(m.model_path), fs::file_size(src));
  ASSERT_EQ(m.layers.size(), 1u);
  EXPECT_EQ(m.layers[0].media_type, "application/vnd.ollama.image.model");
  EXPECT_EQ(m.layers[0].digest, digest);
  EXPECT_FALSE(m.template_text);
  EXPECT_EQ(m.system, "");
  EXPECT_EQ(m.params, json::object());

  // Details: the tensors' element count, the architecture, and F32 from the tensors (no general.file_type).
  pl::GgufFile g = pl::GgufFile::open(src.string());
  uint64_t n_params = 0;
  for (const auto& t : g.tensors()) n_params += t.n_elements;
  EXPECT_EQ(m.details.format, "gguf");
  EXPECT_EQ(m.details.family, "llama");
  EXPECT_EQ(m.details.families, std::vector<std::string>{"llama"});
  EXPECT_EQ(m.details.parameter_size, pl::store::format_parameter_count(n_params));
  EXPECT_EQ(m.details.parameter_size.back(), 'K');
  EXPECT_EQ(m.details.quantization_level, "F32");

  // The manifest is Ollama's format, its digest is the hash of its bytes, and the size counts every blob.
  const std::string text = manifest_of(f, "stories");
  json j = json::parse(text);
  EXPECT_EQ(j["schemaVersion"], 2);
  EXPECT_EQ(j["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
  EXPECT_EQ(j["config"]["mediaType"], "application/vnd.docker.container.image.v1+json");
  EXPECT_EQ(m.digest, pl::store::sha256_hex(text));
  json config = json::parse(pl::test::read_file(f.store.blob_path(j["config"]["digest"].get<std::string>())));
  EXPECT_EQ(config["model_format"], "gguf");
  EXPECT_EQ(config["model_family"], "llama");
  EXPECT_EQ(config["file_type"], "F32");
  EXPECT_EQ(config["rootfs"]["diff_ids"], json::array({digest}));
  EXPECT_EQ(m.size, fs::file_size(src) + j["config"]["size"].get<uint64_t>());
  EXPECT_TRUE(std::regex_match(m.modified_at, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)"))) << m.modified_at;

  // Creating again from the same file reuses the blob.
  status.clear();
  f.store.create("me/stories:v2", from(src.string()), {}, [&](const std::string& s) { status.push_back(s); });
  EXPECT_TRUE(has_line(status, "using existing layer " + digest));
  EXPECT_EQ(f.store.list().size(), 2u);
}

TEST(Store, CreateFromRelativePathAndErrors) {
  StoreFixture f;
  f.gguf("tiny.gguf");
  ModelInfo m = f.store.create("tiny", from("tiny.gguf"), f.dir.path);
  EXPECT_EQ(m.details.parameter_size, "1K");  // 64*16 + 64 = 1088 elements
  EXPECT_EQ(m.details.quantization_level, "F32");
  f.store.create("tiny2", from("./tiny.gguf"), f.dir.path);
  f.store.create("tiny3", from((f.dir.path / "tiny.gguf").string()));

  std::ofstream(f.dir.path / "notes.txt") << "this is not a GGUF file at all";
  EXPECT_EQ(error_of([&] { f.store.create("bad", from("notes.txt"), f.dir.path); }).rfind("invalid model file 'notes.txt': ", 0),
            0u);
  pl::GgufWriter w;
  w.set("general.architecture", "llama");
  w.write((f.dir.path / "vocab.gguf").string());
  EXPECT_NE(error_of([&] { f.store.create("bad", from("vocab.gguf"), f.dir.path); }).find("no tensors"),
            std::string::npos);

  try {
    f.store.create("x", from("nosuchmodel"), f.dir.path);
    ADD_FAILURE() << "expected NotFoundError";
  } catch (const pl::store::NotFoundError& e) {
    EXPECT_STREQ(e.what(), "model 'nosuchmodel' not found");
  }
  EXPECT_NE(error_of([&] { f.store.create("x", from("./missing.gguf"), f.dir.path); })
                .find("no model of that name and no file"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { f.store.create("x", CreateRequest{}); }), "no FROM given: name a model or a GGUF file");
  EXPECT_NE(error_of([&] { f.store.create("../x", from("tiny")); }).find("invalid model name"), std::string::npos);

  CreateRequest bad_params = from("tiny");
  bad_params.parameters = {{"num_ctx", "lots"}};
  EXPECT_EQ(error_of([&] { f.store.create("y", bad_params); }), "parameter 'num_ctx' expects an integer, got 'lots'");
  CreateRequest bad_messages = from("tiny");
  bad_messages.messages = json::array({{{"role", "robot"}, {"content", "x"}}});
  EXPECT_NE(error_of([&] { f.store.create("y", bad_messages); }).find("robot"), std::string::npos);
  CreateRequest bad_utf8 = pl::store::parse_modelfile("FROM tiny\nMESSAGE user \xff\xfe\n");
  EXPECT_EQ(error_of([&] { f.store.create("y", bad_utf8); }), "messages contain text that is not valid UTF-8");
  bad_utf8 = pl::store::parse_modelfile("FROM tiny\nPARAMETER stop \xff\n");
  EXPECT_EQ(error_of([&] { f.store.create("y", bad_utf8); }), "parameters contain text that is not valid UTF-8");
  EXPECT_FALSE(f.store.find("y"));
  EXPECT_FALSE(f.store.find("x"));
  EXPECT_EQ(f.store.list().size(), 3u);
}

TEST(Store, CreateFromExistingModelOverrides) {
  StoreFixture f;
  f.gguf("m.gguf");
  CreateRequest base = pl::store::parse_modelfile(
      "FROM m.gguf\nTEMPLATE T1\nSYSTEM A\nPARAMETER temperature 0.5\nPARAMETER stop x\nLICENSE L\n"
      "MESSAGE user hi\n");
  ModelInfo b = f.store.create("base", base, f.dir.path);
  EXPECT_EQ(*b.template_text, "T1");
  EXPECT_EQ(b.system, "A");
  EXPECT_EQ(b.params, json::parse(R"({"temperature":0.5,"stop":["x"]})"));
  EXPECT_EQ(b.licenses, std::vector<std::string>{"L"});
  EXPECT_EQ(b.messages, json::parse(R"([{"role":"user","content":"hi"}])"));

  std::vector<std::string> status;
  CreateRequest child =
      pl::store::parse_modelfile("FROM base\nSYSTEM B\nPARAMETER top_k 10\nPARAMETER stop y\nPARAMETER stop z\n");
  ModelInfo c = f.store.create("child", child, f.dir.path, [&](const std::string& s) { status.push_back(s); });
  EXPECT_EQ(*c.template_text, "T1");
  EXPECT_EQ(c.system, "B");
  EXPECT_EQ(c.params, json::parse(R"({"temperature":0.5,"top_k":10,"stop":["y","z"]})"));
  EXPECT_EQ(c.licenses, b.licenses);
  EXPECT_EQ(c.messages, b.messages);
  EXPECT_EQ(c.model_path, b.model_path);
  EXPECT_EQ(c.details.parent_model, "base:latest");
  EXPECT_EQ(c.details.family, "llama");
  EXPECT_EQ(c.details.parameter_size, b.details.parameter_size);
  EXPECT_TRUE(has_line(status, "using existing layer " + b.layers[0].digest));
  EXPECT_TRUE(has_line(status, "creating new layer sha256:" + pl::store::sha256_hex("B")));
  EXPECT_FALSE(has_line(status, "parsing GGUF"));
  EXPECT_EQ(status.back(), "success");

  // The base is untouched; an override to the same text reuses the blob.
  ModelInfo b2 = f.store.get("base");
  EXPECT_EQ(b2.system, "A");
  EXPECT_EQ(b2.digest, b.digest);
  CreateRequest same;
  same.from = "child";
  same.system = "A";
  status.clear();
  ModelInfo g = f.store.create("grandchild", same, {}, [&](const std::string& s) { status.push_back(s); });
  EXPECT_EQ(g.system, "A");
  EXPECT_TRUE(has_line(status, "using existing layer sha256:" + pl::store::sha256_hex("A")));
  EXPECT_EQ(g.details.parent_model, "child:latest");
}

TEST(Store, CreateFromUploadedFiles) {
  StoreFixture f;
  const fs::path p = f.gguf("m.gguf");
  const std::string digest = "sha256:" + pl::store::sha256_file_hex(p);
  CreateRequest r;
  r.files = {{"m.gguf", digest}};
  EXPECT_NE(error_of([&] { f.store.create("up", r); }).find("not found: upload it first"), std::string::npos);

  const fs::path other = f.gguf("other.gguf", 7);
  EXPECT_NE(error_of([&] { f.store.put_blob(digest, other); }).find("digest mismatch"), std::string::npos);
  EXPECT_FALSE(f.store.has_blob(digest));
  f.store.put_blob(digest, p);
  r.template_text = "{{ .Prompt }}";
  ModelInfo m = f.store.create("up", r);
  EXPECT_EQ(m.layers[0].digest, digest);
  EXPECT_EQ(*m.template_text, "{{ .Prompt }}");
  EXPECT_EQ(m.details.family, "llama");

  r.from = "up";
  EXPECT_EQ(error_of([&] { f.store.create("x", r); }), "give either 'from' or 'files', not both");
  r.from.clear();
  r.files["second.gguf"] = digest;
  EXPECT_EQ(error_of([&] { f.store.create("x", r); }), "expected one GGUF file in 'files', got 2");
  r.files = {{"bad", "sha256:nothex"}};
  EXPECT_NE(error_of([&] { f.store.create("x", r); }).find("invalid digest"), std::string::npos);

  // An uploaded non-GGUF blob is refused at create time.
  std::ofstream(f.dir.path / "text") << "hello";
  const std::string text_digest = f.store.import_file(f.dir.path / "text");
  r.files = {{"text.gguf", text_digest}};
  EXPECT_EQ(error_of([&] { f.store.create("x", r); }).rfind("invalid model file 'text.gguf'", 0), 0u);
}

TEST(Store, CopyAndRemoveCollectBlobs) {
  StoreFixture f;
  f.gguf("m.gguf");
  CreateRequest a = from("m.gguf");
  a.system = "system of a";
  CreateRequest b = from("m.gguf");
  b.system = "system of b";
  ModelInfo ma = f.store.create("me/a", a, f.dir.path);
  ModelInfo mb = f.store.create("b", b, f.dir.path);
  ASSERT_EQ(ma.model_path, mb.model_path);

  // Someone's upload waiting for its create.
  std::ofstream(f.dir.path / "upload") << "pending";
  const std::string pending = f.store.import_file(f.dir.path / "upload");

  f.store.copy("me/a", "other.io/team/a:copy");
  ModelInfo c = f.store.get("other.io/team/a:copy");
  EXPECT_EQ(c.digest, ma.digest);
  EXPECT_EQ(c.system, "system of a");
  EXPECT_EQ(f.store.list().size(), 3u);
  f.store.copy("b", "b");  // onto itself: nothing happens
  try {
    f.store.copy("nope", "x");
    ADD_FAILURE() << "expected NotFoundError";
  } catch (const pl::store::NotFoundError& e) {
    EXPECT_STREQ(e.what(), "model 'nope' not found");
  }

  const size_t n_blobs = f.n_blobs();
  f.store.remove("me/a");  // its copy still holds every blob
  EXPECT_FALSE(f.store.find("me/a"));
  EXPECT_EQ(f.n_blobs(), n_blobs);
  EXPECT_FALSE(fs::exists(f.store.root() / "manifests/registry.ollama.ai/me"));  // empty directories go too
  EXPECT_TRUE(fs::exists(f.store.root() / "manifests/registry.ollama.ai/library"));

  f.store.remove("other.io/team/a:copy");  // now a's system layer and config are orphaned
  EXPECT_FALSE(f.store.has_blob("sha256:" + pl::store::sha256_hex("system of a")));
  EXPECT_TRUE(f.store.has_blob("sha256:" + pl::store::sha256_hex("system of b")));
  EXPECT_TRUE(fs::exists(mb.model_path));  // shared with b
  EXPECT_FALSE(fs::exists(f.store.root() / "manifests/other.io"));

  f.store.remove("b:latest");
  EXPECT_FALSE(fs::exists(mb.model_path));
  EXPECT_TRUE(f.store.list().empty());
  EXPECT_TRUE(f.store.has_blob(pending));  // not ours to collect
  EXPECT_EQ(f.n_blobs(), 1u);
  EXPECT_EQ(f.store.prune_blobs(), 1u);
  EXPECT_EQ(f.n_blobs(), 0u);

  try {
    f.store.remove("b");
    ADD_FAILURE() << "expected NotFoundError";
  } catch (const pl::store::NotFoundError& e) {
    EXPECT_STREQ(e.what(), "model 'b' not found");
  }
  EXPECT_THROW(f.store.get("b"), pl::store::NotFoundError);
}

TEST(Store, OverwritingAModelCollectsItsOldLayers) {
  StoreFixture f;
  f.gguf("m.gguf");
  CreateRequest r = from("m.gguf");
  r.system = "old";
  f.store.create("m", r, f.dir.path);
  r.system = "new";
  ModelInfo m = f.store.create("m", r, f.dir.path);
  EXPECT_EQ(m.system, "new");
  EXPECT_FALSE(f.store.has_blob("sha256:" + pl::store::sha256_hex("old")));
  EXPECT_TRUE(fs::exists(m.model_path));
  EXPECT_EQ(f.store.list().size(), 1u);
}

TEST(Store, ListsNewestFirst) {
  StoreFixture f;
  f.gguf("m.gguf");
  for (const char* n : {"a", "b", "c", "d"}) f.store.create(n, from("m.gguf"), f.dir.path);
  auto set_time = [&](const char* name, int seconds_ago) {
    fs::last_write_time(f.store.root() / "manifests" / pl::store::ModelName::parse(name).manifest_path(),
                        fs::file_time_type::clock::now() - std::chrono::seconds(seconds_ago));
  };
  set_time("a", 300);
  set_time("b", 100);
  set_time("c", 200);
  set_time("d", 10);
  std::vector<std::string> names;
  for (const ModelInfo& m : f.store.list()) names.push_back(m.name.display());
  EXPECT_EQ(names, (std::vector<std::string>{"d:latest", "b:latest", "c:latest", "a:latest"}));
  EXPECT_TRUE(pl::store::Store(f.dir.path / "nothing-here").list().empty());
}

TEST(Store, Details) {
  using pl::store::format_parameter_count;
  EXPECT_EQ(format_parameter_count(0), "0");
  EXPECT_EQ(format_parameter_count(999), "999");
  EXPECT_EQ(format_parameter_count(1000), "1K");
  EXPECT_EQ(format_parameter_count(260'000), "260K");
  EXPECT_EQ(format_parameter_count(292'640), "293K");
  EXPECT_EQ(format_parameter_count(7'000'000), "7M");
  EXPECT_EQ(format_parameter_count(494'032'768), "494.03M");
  EXPECT_EQ(format_parameter_count(1'100'048'384), "1.1B");
  EXPECT_EQ(format_parameter_count(8'000'000'000), "8B");
  EXPECT_EQ(format_parameter_count(8'030'261'248), "8.0B");
  EXPECT_EQ(format_parameter_count(70'553'706'496), "70.6B");

  EXPECT_EQ(pl::store::file_type_name(15), "Q4_K_M");
  EXPECT_EQ(pl::store::file_type_name(2), "Q4_0");
  EXPECT_EQ(pl::store::file_type_name(7), "Q8_0");
  EXPECT_EQ(pl::store::file_type_name(32), "BF16");
  EXPECT_EQ(pl::store::file_type_name(1024 + 15), "Q4_K_M");  // the "guessed" flag
  EXPECT_EQ(pl::store::file_type_name(4), "");
  EXPECT_EQ(pl::store::file_type_name(999), "");

  pl::test::TempDir d;
  using pl::DType;
  pl::test::write_tiny_gguf(d.path / "a.gguf", "qwen2", 15, {{"w", DType::Q4_K, {256, 4}}, {"n", DType::F32, {256}}});
  auto details = [&](const char* file) { return pl::store::details_from_gguf(pl::GgufFile::open((d.path / file).string())); };
  pl::store::ModelDetails a = details("a.gguf");
  EXPECT_EQ(a.family, "qwen2");
  EXPECT_EQ(a.quantization_level, "Q4_K_M");
  EXPECT_EQ(a.parameter_size, "1K");  // 1280
  // Without general.file_type the weights' dominant type decides, not the many small F32 norms.
  pl::test::write_tiny_gguf(d.path / "b.gguf", "llama", std::nullopt,
                            {{"w", DType::Q8_0, {64, 64}}, {"x", DType::F16, {32, 32}}, {"n1", DType::F32, {2048}},
                             {"n2", DType::F32, {2048}}, {"n3", DType::F32, {2048}}});
  EXPECT_EQ(details("b.gguf").quantization_level, "Q8_0");
  // An unknown file type number falls back to the tensors too.
  pl::test::write_tiny_gguf(d.path / "c.gguf", "llama", 999, {{"w", DType::F16, {64, 64}}});
  EXPECT_EQ(details("c.gguf").quantization_level, "F16");
}

TEST(Store, DefaultRoot) {
  const char* old_models = std::getenv("OLLAMA_MODELS");
  const std::string saved = old_models ? old_models : "";
  ::setenv("OLLAMA_MODELS", "/srv/models", 1);
  EXPECT_EQ(pl::store::Store::default_root(), fs::path("/srv/models"));
  ::unsetenv("OLLAMA_MODELS");
  const char* home = std::getenv("HOME");
  if (home != nullptr) {
    EXPECT_EQ(pl::store::Store::default_root(), fs::path(home) / ".parallama/models");
  }
  if (old_models) ::setenv("OLLAMA_MODELS", saved.c_str(), 1);
}
