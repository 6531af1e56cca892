// The client commands, talking to `parallama serve` over HTTP like Ollama's CLI:
// run, list, ps, show, create, cp, rm, stop, pull.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/bench_report.h"  // human_bytes
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/run.h"
#include "core/error.h"
#include "server/http.h"  // unix_of_rfc3339
#include "store/sha256.h"
#include "store/store.h"

namespace pl::cli {

using nlohmann::json;

namespace {

std::string ago(const std::string& rfc) {
  const double secs = std::difftime(std::time(nullptr), static_cast<std::time_t>(server::unix_of_rfc3339(rfc)));
  auto plural = [](long n, const char* unit) { return fmt::format("{} {}{} ago", n, unit, n == 1 ? "" : "s"); };
  if (secs < 60) return "Less than a minute ago";
  if (secs < 3600) return plural(static_cast<long>(secs / 60), "minute");
  if (secs < 86400) return plural(static_cast<long>(secs / 3600), "hour");
  return plural(static_cast<long>(secs / 86400), "day");
}

std::string until(const std::string& rfc) {
  const double secs = std::difftime(static_cast<std::time_t>(server::unix_of_rfc3339(rfc)), std::time(nullptr));
  if (secs > 100.0 * 365 * 86400) return "Forever";
  if (secs <= 0) return "Stopping...";
  if (secs < 60) return fmt::format("{} seconds from now", static_cast<long>(secs));
  if (secs < 3600) return fmt::format("{} minutes from now", static_cast<long>(secs / 60));
  return fmt::format("{} hours from now", static_cast<long>(secs / 3600));
}

std::string short_digest(const json& m) {
  std::string d = m.value("digest", "");
  if (d.rfind("sha256:", 0) == 0) d = d.substr(7);
  return d.substr(0, 12);
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (w.size() <= i) w.push_back(0);
      w[i] = std::max(w[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) line += i + 1 < r.size() ? fmt::format("{:<{}}    ", r[i], w[i]) : r[i];
    std::printf("%s\n", line.c_str());
  }
}

bool is_gguf(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::string(magic, 4) == "GGUF";
}

void create(const std::string& name, const std::string& file, const std::string& quantize) {
  if (!quantize.empty()) fail("--quantize is not supported by create: use `parallama quantize IN OUT TYPE` first");
  ApiClient api = ApiClient::from_env();
  std::filesystem::path path = file.empty() ? "Modelfile" : file;
  if (!std::filesystem::exists(path)) fail("no Modelfile at {} (use -f FILE)", path.string());
  store::CreateRequest cr;
  std::filesystem::path base_dir = std::filesystem::absolute(path).parent_path();
  if (is_gguf(path)) {  // `create NAME -f model.gguf`: the file itself is the model
    cr.from = std::filesystem::absolute(path).string();
  } else {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    cr = store::parse_modelfile(ss.str());
  }
  json body{{"model", name}};
  // FROM a file: upload it as a blob (skipped when the server has it), then name it in "files".
  std::filesystem::path from = cr.from;
  if (!from.empty() && from.is_relative()) from = base_dir / from;
  if (!cr.from.empty() && (cr.from.find('/') != std::string::npos || cr.from.rfind('.', 0) == 0 ||
                           std::filesystem::is_regular_file(from)) &&
      std::filesystem::is_regular_file(from)) {
    std::fprintf(stderr, "gathering model components\n");
    const std::string digest = "sha256:" + store::sha256_file_hex(from);
    if (!api.head("/api/blobs/" + digest)) {
      std::fprintf(stderr, "copying file %s 100%%\n", digest.c_str());
      api.upload("/api/blobs/" + digest, from.string());
    }
    body["files"] = json{{from.filename().string(), digest}};
  } else if (!cr.from.empty()) {
    body["from"] = cr.from;
  }
  if (cr.template_text) body["template"] = *cr.template_text;
  if (cr.system) body["system"] = *cr.system;
  if (!cr.parameters.empty()) body["parameters"] = cr.parameters;
  if (cr.license) body["license"] = *cr.license;
  if (cr.messages) body["messages"] = *cr.messages;
  api.stream("/api/create", body, [](const json& j) { std::fprintf(stderr, "%s\n", j.value("status", "").c_str()); });
}

}  // namespace

void show_model(const std::string& model, const std::string& part) {
  ApiClient api = ApiClient::from_env();
  json j = api.call("POST", "/api/show", json{{"model", model}});
  if (part == "modelfile") return (void)std::printf("%s\n", j.value("modelfile", "").c_str());
  if (part == "template") return (void)std::printf("%s\n", j.value("template", "").c_str());
  if (part == "system") return (void)std::printf("%s\n", j.value("system", "").c_str());
  if (part == "parameters") return (void)std::printf("%s\n", j.value("parameters", "").c_str());
  if (part == "license") {
    json l = j.value("license", json());
    std::printf("%s\n", l.is_string() ? l.get<std::string>().c_str() : l.dump().c_str());
    return;
  }
  const json d = j.value("details", json::object());
  const json info = j.value("model_info", json::object());
  const std::string arch = info.value("general.architecture", d.value("family", ""));
  std::printf("  Model\n");
  std::printf("    %-20s%s\n", "architecture", arch.c_str());
  std::printf("    %-20s%s\n", "parameters", d.value("parameter_size", "").c_str());
  if (info.contains(arch + ".context_length"))
    std::printf("    %-20s%s\n", "context length", info[arch + ".context_length"].dump().c_str());
  if (info.contains(arch + ".embedding_length"))
    std::printf("    %-20s%s\n", "embedding length", info[arch + ".embedding_length"].dump().c_str());
  std::printf("    %-20s%s\n\n", "quantization", d.value("quantization_level", "").c_str());
  std::printf("  Capabilities\n");
  for (const auto& c : j.value("capabilities", json::array())) std::printf("    %s\n", c.get<std::string>().c_str());
  const std::string params = j.value("parameters", "");
  if (!params.empty()) {
    std::printf("\n  Parameters\n");
    std::istringstream ps(params);
    for (std::string l; std::getline(ps, l);) std::printf("    %s\n", l.c_str());
  }
  if (j.contains("system")) std::printf("\n  System\n    %s\n", j["system"].get<std::string>().c_str());
  if (j.contains("license")) {
    json l = j["license"];
    std::string first = l.is_string() ? l.get<std::string>() : l[0].get<std::string>();
    std::printf("\n  License\n    %s\n", first.substr(0, first.find('\n')).c_str());
  }
  std::printf("\n");
}

void register_client_commands(CLI::App& app) {
  register_run(app);

  auto* list = app.add_subcommand("list", "List models")->alias("ls");
  list->callback([] {
    json j = ApiClient::from_env().call("GET", "/api/tags");
    std::vector<std::vector<std::string>> rows = {{"NAME", "ID", "SIZE", "MODIFIED"}};
    for (const auto& m : j["models"])
      rows.push_back({m.value("name", ""), short_digest(m), human_bytes(m.value("size", uint64_t{0})),
                      ago(m.value("modified_at", ""))});
    print_table(rows);
  });

  // Ollama's columns first, in Ollama's order, so scripts written for `ollama ps` still
  // read them; then the numbers the live page (/ui) shows, from the same /api/ps fields.
  auto* ps = app.add_subcommand("ps", "List running models with their parallel limit, load and throughput");
  ps->callback([] {
    json j = ApiClient::from_env().call("GET", "/api/ps");
    std::vector<std::vector<std::string>> rows = {{"NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL", "PARALLEL",
                                                   "SOURCE", "RUNNING", "QUEUED", "KV USED", "TOKENS/S"}};
    auto number = [](const json& m, const char* key) { return m.contains(key) && m[key].is_number(); };
    for (const auto& m : j["models"])
      rows.push_back({m.value("name", ""), short_digest(m), human_bytes(m.value("size", uint64_t{0})), "100% CPU",
                      std::to_string(m.value("context_length", 0)), until(m.value("expires_at", "")),
                      std::to_string(m.value("num_parallel", 0)), m.value("parallel_source", ""),
                      std::to_string(m.value("running", 0)), std::to_string(m.value("queued", 0)),
                      number(m, "kv_used") ? fmt::format("{:.0f}%", 100 * m["kv_used"].get<double>()) : "-",
                      number(m, "tokens_per_second") ? fmt::format("{:.1f}", m["tokens_per_second"].get<double>())
                                                     : "-"});
    print_table(rows);
  });

  auto show_name = std::make_shared<std::string>();
  auto show_part = std::make_shared<std::string>();
  auto* show_cmd = app.add_subcommand("show", "Show information for a model");
  show_cmd->add_option("model", *show_name, "Model name")->required();
  for (const char* part : {"modelfile", "parameters", "template", "system", "license"})
    show_cmd->add_flag_callback(std::string("--") + part, [show_part, part] { *show_part = part; },
                                std::string("Show the model's ") + part);
  show_cmd->callback([show_name, show_part] { show_model(*show_name, *show_part); });

  struct CreateOpts {
    std::string name, file, quantize;
  };
  auto co = std::make_shared<CreateOpts>();
  auto* create_cmd = app.add_subcommand("create", "Create a model from a Modelfile (or a GGUF file)");
  create_cmd->add_option("model", co->name, "Name of the new model")->required();
  create_cmd->add_option("-f,--file", co->file, "Modelfile or GGUF file (default: ./Modelfile)");
  create_cmd->add_option("-q,--quantize", co->quantize, "Not supported: use `parallama quantize`");
  create_cmd->callback([co] { create(co->name, co->file, co->quantize); });

  auto cp_args = std::make_shared<std::vector<std::string>>();
  auto* cp = app.add_subcommand("cp", "Copy a model");
  cp->add_option("source destination", *cp_args, "SOURCE DESTINATION")->required()->expected(2);
  cp->callback([cp_args] {
    ApiClient::from_env().call("POST", "/api/copy",
                               json{{"source", (*cp_args)[0]}, {"destination", (*cp_args)[1]}});
    std::printf("copied '%s' to '%s'\n", (*cp_args)[0].c_str(), (*cp_args)[1].c_str());
  });

  auto rm_args = std::make_shared<std::vector<std::string>>();
  auto* rm = app.add_subcommand("rm", "Remove models");
  rm->add_option("models", *rm_args, "Model names")->required()->expected(1, -1);
  rm->callback([rm_args] {
    for (const auto& m : *rm_args) {
      ApiClient::from_env().call("DELETE", "/api/delete", json{{"model", m}});
      std::printf("deleted '%s'\n", m.c_str());
    }
  });

  auto stop_model = std::make_shared<std::string>();
  auto* stop = app.add_subcommand("stop", "Stop (unload) a running model");
  stop->add_option("model", *stop_model, "Model name")->required();
  stop->callback([stop_model] {
    ApiClient::from_env().call("POST", "/api/generate", json{{"model", *stop_model}, {"keep_alive", 0}});
  });

  struct ParallelOpts {
    std::string model, value;
  };
  auto po = std::make_shared<ParallelOpts>();
  auto* par = app.add_subcommand("parallel", "Show the loaded models' parallel limits, or set one live: MODEL N|auto");
  par->add_option("model", po->model, "Model name");
  par->add_option("value", po->value, "New limit (a count, or auto for the tuner)");
  par->callback([po] {
    ApiClient api = ApiClient::from_env();
    if (const char* t = std::getenv("PARALLAMA_ADMIN_TOKEN"); t != nullptr && *t != '\0') api.bearer = t;
    if (!po->value.empty()) {
      if (po->model.empty()) fail("usage: parallama parallel MODEL N|auto");
      json v;
      if (po->value == "auto") {
        v = "auto";
      } else {
        char* end = nullptr;
        const long n = std::strtol(po->value.c_str(), &end, 10);
        if (end == po->value.c_str() || *end != '\0') fail("num_parallel must be a count or auto, got '{}'", po->value);
        v = n;
      }
      json r = api.call("POST", "/api/parallel", json{{"model", po->model}, {"num_parallel", v}});
      std::printf("%s: parallel %s (%s)\n", r.value("model", "").c_str(), r["num_parallel"].dump().c_str(),
                  r.value("source", "").c_str());
      if (r.contains("warning")) std::fprintf(stderr, "warning: %s\n", r["warning"].get<std::string>().c_str());
      return;
    }
    json j = api.call("GET", "/api/parallel");
    std::vector<std::vector<std::string>> rows = {{"NAME", "PARALLEL", "SOURCE", "RUNNING", "QUEUED", "KV USED"}};
    for (const auto& m : j["models"]) {
      if (!po->model.empty() && m.value("model", "").rfind(po->model, 0) != 0) continue;
      rows.push_back({m.value("model", ""), std::to_string(m.value("num_parallel", 0)), m.value("source", ""),
                      std::to_string(m.value("running", 0)), std::to_string(m.value("queued", 0)),
                      m.contains("kv_used") ? fmt::format("{:.0f}%", 100 * m["kv_used"].get<double>()) : "-"});
    }
    print_table(rows);
  });

  auto pull_model = std::make_shared<std::string>();
  auto* pull = app.add_subcommand("pull", "Pull a model (only local files and present models: parallama is offline)");
  pull->add_option("model", *pull_model, "Model name or a local GGUF path")->required();
  pull->callback([pull_model] {
    ApiClient::from_env().stream("/api/pull", json{{"model", *pull_model}},
                                 [](const json& j) { std::fprintf(stderr, "%s\n", j.value("status", "").c_str()); });
  });
}

}  // namespace pl::cli
