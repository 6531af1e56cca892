// Modelfile parsing and Ollama's typed option table.
//
// A Modelfile is a list of instructions, one per line:  NAME value
// where a value runs to the end of its line, or is "quoted" / """triple quoted"""
// and then may span lines. A quoted value ends at the first line whose trimmed
// text ends with the closing quote, so quotes inside it need no escaping
// (SYSTEM """Say "hi".""" works), as in Ollama's files. There are no escapes:
// the writer (write_modelfile) picks, for each value, a form this reader takes
// back as exactly that value.
#include "store/modelfile.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

namespace pl::store {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
std::string_view ltrim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  return s;
}
std::string_view rtrim(std::string_view s) {
  while (!s.empty() && (is_space(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return out;
}

OptionType type_of(const std::string& name) {
  auto it = ollama_options().find(name);
  if (it == ollama_options().end()) fail("unknown parameter '{}'", name);
  return it->second.type;
}

nlohmann::json parse_typed(const std::string& name, OptionType type, std::string_view v) {
  if (type == OptionType::Int) {
    int64_t x = 0;
    auto r = std::from_chars(v.data(), v.data() + v.size(), x);
    if (v.empty() || r.ec != std::errc() || r.ptr != v.data() + v.size())
      fail("parameter '{}' expects an integer, got '{}'", name, v);
    return x;
  }
  if (type == OptionType::Float) {
    double x = 0;
    auto r = std::from_chars(v.data(), v.data() + v.size(), x);
    if (v.empty() || r.ec != std::errc() || r.ptr != v.data() + v.size() || !std::isfinite(x))
      fail("parameter '{}' expects a number, got '{}'", name, v);
    return x;
  }
  if (type == OptionType::Bool) {
    // The spellings Go's strconv.ParseBool takes, since Ollama's files use them.
    if (v == "true" || v == "True" || v == "TRUE" || v == "t" || v == "T" || v == "1") return true;
    if (v == "false" || v == "False" || v == "FALSE" || v == "f" || v == "F" || v == "0") return false;
    fail("parameter '{}' expects true or false, got '{}'", name, v);
  }
  return nlohmann::json::array({std::string(v)});
}

// One logical line: the instruction and its raw value, and where it started.
struct Instruction {
  int line = 0;
  std::string name;  // lower case
  std::string rest;  // everything after the name and its separating blanks, quotes not yet removed
};

// Takes a quoted value that starts on lines[i] with `first` (the rest of that
// line from the opening quote); returns its content and advances i to the
// closing line. Inner lines keep their spacing; only line ends are normalised.
std::string read_quoted(const std::vector<std::string_view>& lines, size_t& i, std::string_view first,
                        int start_line) {
  const std::string_view q = first.substr(0, 3) == "\"\"\"" ? "\"\"\"" : "\"";
  std::string text(first);
  // The closing quote must come after the opening one.
  auto closed = [&] {
    std::string_view t = rtrim(text);
    return t.size() >= 2 * q.size() && t.ends_with(q);
  };
  while (!closed()) {
    if (++i >= lines.size()) fail("line {}: unterminated {} string", start_line, q);
    text += '\n';
    text += lines[i];
  }
  std::string_view t = rtrim(text);
  return std::string(t.substr(q.size(), t.size() - 2 * q.size()));
}

// Pulls the value that starts with `v` on lines[i] (advancing i past a
// multi-line one): quoted, or else the rest of the line without trailing blanks.
std::string read_value(const std::vector<std::string_view>& lines, size_t& i, std::string_view v, int line,
                       std::string_view what) {
  if (rtrim(v).empty()) fail("line {}: {} needs a value", line, what);
  if (v[0] == '"') return read_quoted(lines, i, v, line);
  return std::string(rtrim(v));
}

// Lines without their '\n' (and a '\r' before it); a final line without one counts.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  for (size_t start = 0; start <= text.size();) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view l = text.substr(start, nl - start);
    if (l.ends_with('\r')) l.remove_suffix(1);
    lines.push_back(l);
    start = nl + 1;
  }
  return lines;
}

// Whether the reader takes `written` (the text after an instruction's name)
// back as exactly `value`, ending on its last line.
bool reads_back(const std::string& written, std::string_view value) {
  const std::vector<std::string_view> lines = split_lines(written);
  size_t i = 0;
  try {
    return read_value(lines, i, ltrim(lines[0]), 1, "value") == value && i + 1 == lines.size();
  } catch (const Error&) {
    return false;
  }
}

// Splits "word rest" for PARAMETER and MESSAGE arguments.
std::pair<std::string, std::string_view> split_word(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && !is_space(s[n])) ++n;
  return {std::string(s.substr(0, n)), ltrim(s.substr(n))};
}

}  // namespace

const std::map<std::string, OllamaOption>& ollama_options() {
  using T = OptionType;
  static const std::map<std::string, OllamaOption> t = {
      // Sampling, passed to the runner (under its own name where it differs).
      {"temperature", {T::Float, "temperature", true}},
      {"top_k", {T::Int, "top_k", true}},
      {"top_p", {T::Float, "top_p", true}},
      {"min_p", {T::Float, "min_p", true}},
      {"seed", {T::Int, "seed", true}},
      {"num_predict", {T::Int, "n_predict", true}},
      {"stop", {T::StringList, "stop", true}},
      {"repeat_penalty", {T::Float, "repeat_penalty", true}},
      {"repeat_last_n", {T::Int, "repeat_last_n", true}},
      {"presence_penalty", {T::Float, "presence_penalty", true}},
      {"frequency_penalty", {T::Float, "frequency_penalty", true}},
      // The server's own: the context per sequence, and parallama's parallelism.
      {"num_ctx", {T::Int, nullptr, true}},
      {"num_parallel", {T::Int, nullptr, true}},
      // Accepted for compatibility; they have no meaning for this engine.
      {"num_keep", {T::Int, nullptr, false}},
      {"typical_p", {T::Float, nullptr, false}},
      {"tfs_z", {T::Float, nullptr, false}},
      {"mirostat", {T::Int, nullptr, false}},
      {"mirostat_tau", {T::Float, nullptr, false}},
      {"mirostat_eta", {T::Float, nullptr, false}},
      {"penalize_newline", {T::Bool, nullptr, false}},
      {"num_batch", {T::Int, nullptr, false}},
      {"num_gpu", {T::Int, nullptr, false}},
      {"main_gpu", {T::Int, nullptr, false}},
      {"num_thread", {T::Int, nullptr, false}},
      {"use_mmap", {T::Bool, nullptr, false}},
      {"use_mlock", {T::Bool, nullptr, false}},
      {"numa", {T::Bool, nullptr, false}},
      {"low_vram", {T::Bool, nullptr, false}},
      {"f16_kv", {T::Bool, nullptr, false}},
      {"vocab_only", {T::Bool, nullptr, false}},
      {"logits_all", {T::Bool, nullptr, false}},
      {"num_gqa", {T::Int, nullptr, false}},
      {"rope_frequency_base", {T::Float, nullptr, false}},
      {"rope_frequency_scale", {T::Float, nullptr, false}},
  };
  return t;
}

const char* option_type_name(OptionType t) {
  switch (t) {
    case OptionType::Int: return "int";
    case OptionType::Float: return "float";
    case OptionType::Bool: return "bool";
    case OptionType::StringList: return "string_list";
  }
  return "?";
}

nlohmann::json parse_parameter(const std::string& name, std::string_view value) {
  return parse_typed(name, type_of(name), value);
}

nlohmann::json normalize_parameters(const nlohmann::json& params) {
  if (!params.is_object()) fail("parameters must be a JSON object");
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, v] : params.items()) {
    const OptionType type = type_of(name);
    if (v.is_null()) continue;
    if (v.is_string()) {
      out[name] = parse_typed(name, type, v.get<std::string>());
    } else if (type == OptionType::Int && v.is_number()) {
      double d = v.get<double>();
      if (!v.is_number_integer() && d != std::floor(d)) fail("parameter '{}' expects an integer, got {}", name, v.dump());
      out[name] = v.is_number_integer() ? v : nlohmann::json(static_cast<int64_t>(d));
    } else if (type == OptionType::Float && v.is_number()) {
      out[name] = v.get<double>();
    } else if (type == OptionType::Bool && v.is_boolean()) {
      out[name] = v;
    } else if (type == OptionType::StringList && v.is_array() &&
               std::all_of(v.begin(), v.end(), [](const nlohmann::json& s) { return s.is_string(); })) {
      out[name] = v;
    } else {
      fail("parameter '{}' expects {}, got {}", name,
           type == OptionType::StringList ? std::string("a list of strings") : std::string("a ") + option_type_name(type),
           v.dump());
    }
  }
  return out;
}

CreateRequest parse_modelfile(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a UTF-8 byte order mark
  const std::vector<std::string_view> lines = split_lines(text);

  CreateRequest req;
  bool have_from = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    const int line = static_cast<int>(i) + 1;
    std::string_view s = ltrim(lines[i]);  // trailing blanks stay: a quoted value may need them
    if (rtrim(s).empty() || s[0] == '#') continue;
    size_t n = 0;
    while (n < s.size() && is_alpha(s[n])) ++n;
    if (n == 0 || (n < s.size() && !is_space(s[n])))
      fail("line {}: expected an instruction (FROM, PARAMETER, TEMPLATE, SYSTEM, MESSAGE, LICENSE), got '{}'", line,
           rtrim(s.substr(0, std::min<size_t>(s.size(), 40))));
    const std::string name = lower(s.substr(0, n));
    std::string_view rest = ltrim(s.substr(n));

    auto value_of = [&](std::string_view v, std::string_view what) { return read_value(lines, i, v, line, what); };

    try {
      if (name == "from") {
        if (have_from) fail("line {}: FROM given twice", line);
        req.from = value_of(rest, "FROM");
        have_from = true;
      } else if (name == "parameter") {
        auto [param, v] = split_word(rest);
        if (param.empty()) fail("line {}: PARAMETER needs a name and a value", line);
        param = lower(param);
        nlohmann::json value = parse_parameter(param, value_of(v, "PARAMETER " + param));
        // Repeated stop lines add up; any other parameter given twice keeps the last.
        if (value.is_array() && req.parameters.contains(param)) {
          for (auto& x : value) req.parameters[param].push_back(x);
        } else {
          req.parameters[param] = value;
        }
      } else if (name == "template") {
        req.template_text = value_of(rest, "TEMPLATE");
      } else if (name == "system") {
        req.system = value_of(rest, "SYSTEM");
      } else if (name == "license") {
        if (!req.license) req.license.emplace();
        req.license->push_back(value_of(rest, "LICENSE"));
      } else if (name == "message") {
        auto [role, v] = split_word(rest);
        if (role != "system" && role != "user" && role != "assistant")
          fail("line {}: MESSAGE role must be system, user or assistant, got '{}'", line, role);
        std::string content = value_of(v, "MESSAGE " + role);
        if (!req.messages) req.messages = nlohmann::json::array();
        req.messages->push_back({{"role", role}, {"content", content}});
      } else if (name == "adapter" || name == "draft" || name == "renderer" || name == "parser") {
        fail("line {}: {} is not supported by parallama", line, s.substr(0, n));
      } else if (name == "requires") {
        // The minimum Ollama version a model needs: parallama serves what it can
        // load and says so at load time, so the requirement carries no meaning here.
        value_of(rest, "REQUIRES");
      } else {
        fail("line {}: unknown instruction '{}' (expected FROM, PARAMETER, TEMPLATE, SYSTEM, MESSAGE, LICENSE)", line,
             s.substr(0, n));
      }
    } catch (const Error& e) {
      std::string msg = e.what();
      if (msg.starts_with("line ")) throw;
      fail("line {}: {}", line, msg);
    }
  }
  if (!have_from) fail("no FROM line in the Modelfile");
  return req;
}

ModelfileValue quote_modelfile_value(std::string_view value, bool triple) {
  auto quoted = [&](std::string_view q) {
    std::string s(q);
    s.append(value).append(q);
    return s;
  };
  const std::string tq = quoted("\"\"\""), sq = quoted("\"");
  const bool triple_first = triple || value.find('\n') != std::string_view::npos;
  for (const std::string* form : {triple_first ? &tq : &sq, triple_first ? &sq : &tq})
    if (reads_back(*form, value)) return {*form, true};
  return {tq, false};
}

std::string write_modelfile(const CreateRequest& r) {
  std::string out;
  auto add = [&](std::string_view head, std::string_view value, bool triple) {
    const ModelfileValue v = quote_modelfile_value(value, triple);
    if (!v.exact)
      out += fmt::format("# The next {} has a line ending in \"\"\" (or a CR LF), which no Modelfile quoting can "
                         "carry: it will not read back exactly.\n",
                         head);
    out += fmt::format("{} {}\n", head, v.text);
  };
  // A path goes bare, as Ollama writes it, unless it needs quotes to read back.
  if (reads_back(r.from, r.from))
    out += "FROM " + r.from + "\n";
  else
    add("FROM", r.from, false);
  if (r.template_text) add("TEMPLATE", *r.template_text, true);
  if (r.system) add("SYSTEM", *r.system, true);
  for (const auto& [name, value] : r.parameters.items()) {
    const std::string head = "PARAMETER " + name;
    for (const nlohmann::json& v : value.is_array() ? value : nlohmann::json::array({value})) {
      if (v.is_string())
        add(head, v.get<std::string>(), false);
      else
        out += fmt::format("{} {}\n", head, v.dump());
    }
  }
  if (r.messages)
    for (const nlohmann::json& m : *r.messages) {
      auto text = [&](const char* key) {
        return m.contains(key) && m[key].is_string() ? m[key].get<std::string>() : std::string();
      };
      if (m.is_object()) add("MESSAGE " + text("role"), text("content"), false);
    }
  if (r.license)
    for (const std::string& l : *r.license) add("LICENSE", l, true);
  return out;
}

}  // namespace pl::store
