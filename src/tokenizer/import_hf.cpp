#include "tokenizer/import_hf.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "gguf/gguf_writer.h"
#include "tokenizer/bpe_pretokenize.h"
#include "tokenizer/tokenizer.h"

namespace pl {
namespace {

using nlohmann::json;

json parse_json(std::string_view text, std::string_view what) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    fail("{}: not valid JSON: {}", what, e.what());
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '{}'", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail("cannot read '{}'", path);
  return std::move(ss).str();
}

int32_t json_id(const json& v, std::string_view what) {
  if (!v.is_number_integer()) fail("{}: id is not an integer: {}", what, v.dump());
  const auto id = v.get<int64_t>();
  if (id < 0 || id >= INT32_MAX) fail("{}: id {} is out of range", what, id);
  return static_cast<int32_t>(id);
}

HfAddedToken added_from_object(const json& o, std::string_view what) {
  if (!o.is_object() || !o.contains("content") || !o["content"].is_string())
    fail("{}: an added token needs a string \"content\": {}", what, o.dump());
  HfAddedToken t;
  t.content = o["content"].get<std::string>();
  if (o.contains("id")) t.id = json_id(o["id"], what);
  if (o.contains("special")) {
    if (!o["special"].is_boolean()) fail("{}: \"special\" is not a boolean: {}", what, o.dump());
    t.special = o["special"].get<bool>();
  }
  return t;
}

}  // namespace

std::vector<HfAddedToken> parse_hf_added_tokens(std::string_view text) {
  const json j = parse_json(text, "added tokens");
  std::vector<HfAddedToken> out;
  auto from_array = [&](const json& arr) {
    for (const json& o : arr) {
      HfAddedToken t = added_from_object(o, "added_tokens");
      if (t.id < 0) fail("added_tokens: entry without an \"id\": {}", o.dump());
      out.push_back(std::move(t));
    }
  };
  if (j.is_array()) {
    from_array(j);
  } else if (j.is_object() && j.contains("added_tokens") && j["added_tokens"].is_array()) {
    from_array(j["added_tokens"]);
  } else if (j.is_object() && j.contains("added_tokens_decoder") && j["added_tokens_decoder"].is_object()) {
    for (const auto& [key, o] : j["added_tokens_decoder"].items()) {
      HfAddedToken t = added_from_object(o, "added_tokens_decoder");
      try {
        size_t used = 0;
        const long long id = std::stoll(key, &used);
        if (used != key.size() || id < 0 || id >= INT32_MAX) throw std::invalid_argument(key);
        t.id = static_cast<int32_t>(id);
      } catch (const std::logic_error&) {
        fail("added_tokens_decoder: key '{}' is not a token id", key);
      }
      out.push_back(std::move(t));
    }
  } else if (j.is_object()) {
    for (const auto& [content, id] : j.items()) out.push_back({json_id(id, "added tokens"), content, true});
  } else {
    fail("added tokens: expected a JSON array or object");
  }
  return out;
}

std::vector<HfAddedToken> llama3_special_tokens() {
  constexpr int32_t kFirst = 128000;
  const char* named[] = {
      "<|begin_of_text|>",           "<|end_of_text|>",       "<|reserved_special_token_0|>",
      "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
      "<|start_header_id|>",         "<|end_header_id|>",     "<|eom_id|>",
      "<|eot_id|>",                  "<|python_tag|>",
  };
  std::vector<HfAddedToken> out;
  for (const char* s : named) out.push_back({kFirst + static_cast<int32_t>(out.size()), s, true});
  for (int i = 3; out.size() < 256; ++i) {
    out.push_back({kFirst + static_cast<int32_t>(out.size()), fmt::format("<|reserved_special_token_{}|>", i), true});
  }
  return out;
}

void import_hf_bpe(std::string_view encoder_json, std::string_view merges_text, const HfBpeImportOptions& opt,
                   GgufWriter& w) {
  const tok::PreTokenizerSpec* spec = tok::find_pre_tokenizer(opt.pre);
  if (spec == nullptr || opt.pre.empty())
    fail("unknown pre-tokenizer '{}' (known: {})", opt.pre, tok::known_pre_tokenizer_names());

  // Tokens by id; empty text marks an id not (yet) given.
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  auto place = [&](int32_t id, std::string text, TokenType type, std::string_view what) {
    if (static_cast<size_t>(id) >= tokens.size()) {
      tokens.resize(static_cast<size_t>(id) + 1);
      types.resize(static_cast<size_t>(id) + 1, static_cast<int32_t>(TokenType::Unused));
    }
    if (!tokens[id].empty() && tokens[id] != text)
      fail("{}: id {} is both '{}' and '{}'", what, id, tokens[id], text);
    if (text.empty()) fail("{}: id {} has an empty token", what, id);
    tokens[id] = std::move(text);
    types[id] = static_cast<int32_t>(type);
  };

  const json enc = parse_json(encoder_json, "encoder");
  if (!enc.is_object()) fail("encoder: expected a JSON object mapping tokens to ids");
  tokens.reserve(enc.size() + opt.added_tokens.size());
  for (const auto& [text, id] : enc.items()) place(json_id(id, "encoder"), text, TokenType::Normal, "encoder");
  for (const HfAddedToken& t : opt.added_tokens) {
    if (t.id < 0) fail("added token '{}' has no id", t.content);
    place(t.id, t.content, t.special ? TokenType::Control : TokenType::UserDefined, "added tokens");
  }
  if (tokens.empty()) fail("encoder: no tokens");

  std::unordered_map<std::string_view, int32_t> text_to_id;
  text_to_id.reserve(tokens.size());
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (tokens[id].empty()) {
      tokens[id] = fmt::format("[PAD{}]", id);
    } else if (!text_to_id.emplace(tokens[id], static_cast<int32_t>(id)).second) {
      fail("token '{}' appears twice (ids {} and {})", tokens[id], text_to_id[tokens[id]], id);
    }
  }

  GgufArray merges{GgufType::STRING, {}};
  for (size_t pos = 0, line_no = 1; pos < merges_text.size(); ++line_no) {
    size_t end = merges_text.find('\n', pos);
    if (end == std::string_view::npos) end = merges_text.size();
    std::string_view line = merges_text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const size_t sp = line.find(' ', 1);
    if (sp == std::string_view::npos || sp + 1 >= line.size())
      fail("merges line {}: expected \"left right\", got '{}'", line_no, line);
    merges.items.emplace_back(std::string(line));
  }
  if (merges.items.empty()) fail("merges: no merges");

  auto resolve = [&](const std::optional<std::string>& chosen, std::string_view fallback,
                     std::string_view what) -> int32_t {
    if (chosen) {
      auto it = text_to_id.find(*chosen);
      if (it == text_to_id.end()) fail("{} token '{}' is not in the vocabulary", what, *chosen);
      return it->second;
    }
    auto it = text_to_id.find(fallback);
    return it == text_to_id.end() ? -1 : it->second;
  };
  const bool llama3 = spec->family == "llama3";
  const int32_t bos = resolve(opt.bos, llama3 ? "<|begin_of_text|>" : "", "bos");
  const int32_t eos = resolve(opt.eos, llama3 ? "<|end_of_text|>" : "<|endoftext|>", "eos");
  const int32_t eot = resolve(opt.eot, llama3 ? "<|eot_id|>" : "", "eot");
  const int32_t eom = resolve(opt.eom, llama3 ? "<|eom_id|>" : "", "eom");
  const bool add_bos = opt.add_bos.value_or(spec->add_bos);
  const bool add_eos = opt.add_eos.value_or(false);
  if (add_bos && bos < 0) fail("add_bos is set but there is no bos token");
  if (add_eos && eos < 0) fail("add_eos is set but there is no eos token");

  GgufArray tok_arr{GgufType::STRING, {}};
  tok_arr.items.reserve(tokens.size());
  for (std::string& t : tokens) tok_arr.items.emplace_back(std::move(t));
  GgufArray type_arr{GgufType::INT32, {}};
  type_arr.items.reserve(types.size());
  for (int32_t t : types) type_arr.items.emplace_back(t);

  w.set("tokenizer.ggml.model", "gpt2");
  w.set("tokenizer.ggml.pre", opt.pre);
  w.set("tokenizer.ggml.tokens", std::move(tok_arr));
  w.set("tokenizer.ggml.token_type", std::move(type_arr));
  w.set("tokenizer.ggml.merges", std::move(merges));
  if (bos >= 0) w.set("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(bos));
  if (eos >= 0) w.set("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(eos));
  if (eot >= 0) w.set("tokenizer.ggml.eot_token_id", static_cast<uint32_t>(eot));
  if (eom >= 0) w.set("tokenizer.ggml.eom_token_id", static_cast<uint32_t>(eom));
  w.set("tokenizer.ggml.add_bos_token", add_bos);
  w.set("tokenizer.ggml.add_eos_token", add_eos);
}

void import_hf_bpe_files(const std::string& encoder_path, const std::string& merges_path,
                         const HfBpeImportOptions& opt, GgufWriter& w) {
  const std::string enc = read_file(encoder_path);
  const std::string merges = read_file(merges_path);
  try {
    import_hf_bpe(enc, merges, opt, w);
  } catch (const Error& e) {
    fail("importing '{}' + '{}': {}", encoder_path, merges_path, e.what());
  }
}

}  // namespace pl
