#include "server/options.h"

#include <cmath>
#include <limits>
#include <map>

#include "core/error.h"
#include "server/http.h"
#include "store/store.h"

namespace pl::server {

using nlohmann::json;

namespace {

// An option's value in its canonical type; options without an effect pass as they are.
json check_value(const std::string& name, const store::OllamaOption& spec, const json& v) {
  if (!spec.effective) return v;
  switch (spec.type) {
    case store::OptionType::Int: {
      if (v.is_number_integer()) {
        if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          fail("option '{}' is out of range: {}", name, v.dump());
        return v;
      }
      if (v.is_number_float() && std::isfinite(v.get<double>()) && v.get<double>() == std::floor(v.get<double>()) &&
          std::fabs(v.get<double>()) < 9.2e18)
        return json(static_cast<int64_t>(v.get<double>()));
      fail("option '{}' must be an integer, got {}", name, v.is_number() ? v.dump() : type_of(v));
    }
    case store::OptionType::Float:
      if (!v.is_number()) fail("option '{}' must be a number, got {}", name, type_of(v));
      return v;
    case store::OptionType::Bool:
      if (!v.is_boolean()) fail("option '{}' must be a boolean, got {}", name, type_of(v));
      return v;
    case store::OptionType::StringList: {
      if (v.is_string()) return json::array({v});
      if (!v.is_array()) fail("option '{}' must be an array of strings, got {}", name, type_of(v));
      for (const auto& s : v)
        if (!s.is_string()) fail("option '{}' must be an array of strings, got an element of type {}", name, type_of(s));
      return v;
    }
  }
  return v;
}

int as_int(const json& v) {
  const int64_t i = v.get<int64_t>();
  return static_cast<int>(std::clamp<int64_t>(i, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
}

}  // namespace

ResolvedOptions resolve_options(const json& model_params, const json* request_options) {
  if (request_options != nullptr && !request_options->is_object())
    fail("field 'options' must be an object, got {}", type_of(*request_options));
  json merged = model_params.is_object() ? model_params : json::object();
  if (request_options != nullptr)
    for (auto it = request_options->begin(); it != request_options->end(); ++it) merged[it.key()] = it.value();

  ResolvedOptions out;
  const auto& table = store::ollama_options();
  for (auto it = merged.begin(); it != merged.end(); ++it) {
    if (it.value().is_null()) continue;
    auto spec = table.find(it.key());
    if (spec == table.end()) {
      out.ignored.push_back(it.key());
      continue;
    }
    const json v = check_value(it.key(), spec->second, it.value());
    if (spec->second.runner_name != nullptr) out.runner[spec->second.runner_name] = v;
    if (it.key() == "num_ctx") {
      const int n = as_int(v);
      if (n < 0) fail("option 'num_ctx' must be positive, got {}", n);
      out.num_ctx = n;
    } else if (it.key() == "num_parallel") {
      const int n = as_int(v);
      if (n < 1) fail("option 'num_parallel' must be at least 1, got {}", n);
      out.num_parallel = n;
    }
  }
  // Ollama's num_predict: -1 no limit, -2 fill the context: both mean "until the end" here.
  if (out.runner.contains("n_predict") && out.runner["n_predict"].get<int64_t>() < -1) out.runner["n_predict"] = -1;
  if (out.runner.contains("n_predict") && out.runner["n_predict"].get<int64_t>() > std::numeric_limits<int>::max())
    out.runner["n_predict"] = -1;
  return out;
}

std::optional<sched::Millis> parse_keep_alive(const json* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_number()) {
    const double secs = v->get<double>();
    if (!std::isfinite(secs)) fail("field 'keep_alive' must be a duration, got {}", v->dump());
    if (secs < 0) return sched::Millis(-1);
    return sched::Millis(static_cast<int64_t>(std::min(secs, 1e12) * 1000));
  }
  if (v->is_string()) {
    try {
      return sched::parse_duration(v->get<std::string>());
    } catch (const Error& e) {
      fail("field 'keep_alive': {}", e.what());
    }
  }
  fail("field 'keep_alive' must be a duration string (\"5m\") or a number of seconds, got {}", type_of(*v));
}

}  // namespace pl::server
