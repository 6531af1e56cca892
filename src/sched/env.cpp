// SchedConfig::from_env and the small parsers behind it (durations, byte counts).
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "core/env.h"
#include "sched/sched.h"

namespace pl::sched {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::optional<int64_t> to_int(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

int int_var(const char* name, const std::string& v, int64_t min) {
  const auto n = to_int(v);
  if (!n || *n < min || *n > (int64_t{1} << 30))
    fail("{} must be a {} integer, got '{}'", name, min > 0 ? "positive" : "non-negative", v);
  return static_cast<int>(*n);
}

// Bytes: a plain integer, or one with a unit (K/KB = 1000, KiB = 1024, likewise M, G, T).
uint64_t bytes_var(const char* name, const std::string& v) {
  std::string_view s = v;
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  const auto n = to_int(s.substr(0, digits));
  std::string unit(trim(s.substr(digits)));
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  uint64_t mult = 0;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "K" || unit == "KB") mult = 1000;
  else if (unit == "KIB") mult = 1ull << 10;
  else if (unit == "M" || unit == "MB") mult = 1000ull * 1000;
  else if (unit == "MIB") mult = 1ull << 20;
  else if (unit == "G" || unit == "GB") mult = 1000ull * 1000 * 1000;
  else if (unit == "GIB") mult = 1ull << 30;
  else if (unit == "T" || unit == "TB") mult = 1000ull * 1000 * 1000 * 1000;
  else if (unit == "TIB") mult = 1ull << 40;
  if (!n || *n < 0 || mult == 0 || static_cast<uint64_t>(*n) > (1ull << 60) / mult)
    fail("{} must be a byte count (e.g. 1073741824 or 1GiB), got '{}'", name, v);
  return static_cast<uint64_t>(*n) * mult;
}

Millis duration_var(const char* name, const std::string& v) {
  try {
    return parse_duration(v);
  } catch (const Error& e) {
    fail("{}: {}", name, e.what());
  }
}

}  // namespace

Millis parse_duration(std::string_view text) {
  const std::string_view s0 = trim(text);
  auto bad = [&]() -> Millis {
    fail("invalid duration '{}' (expected e.g. 5m, 1h30m, 300ms, 10s or a number of seconds)", text);
  };
  if (s0.empty()) return bad();
  std::string_view s = s0;
  bool negative = false;
  if (s.front() == '-' || s.front() == '+') {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return bad();
  long double total_ns = 0;
  bool bare_number = true;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    const std::string number(s.substr(0, i));
    if (number.empty() || number == "." || number.find('.') != number.rfind('.')) return bad();
    const long double value = std::strtold(number.c_str(), nullptr);
    s.remove_prefix(i);
    size_t u = 0;
    while (u < s.size() && !((s[u] >= '0' && s[u] <= '9') || s[u] == '.')) ++u;
    const std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    long double scale = 0;
    if (unit.empty()) {
      // Ollama falls back to a bare number of seconds; only a whole string can be one.
      if (!s.empty() || !bare_number) return bad();
      scale = 1e9L;
    } else if (unit == "ns") {
      scale = 1;
    } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
      scale = 1e3L;
    } else if (unit == "ms") {
      scale = 1e6L;
    } else if (unit == "s") {
      scale = 1e9L;
    } else if (unit == "m") {
      scale = 60e9L;
    } else if (unit == "h") {
      scale = 3600e9L;
    } else {
      return bad();
    }
    bare_number = false;
    total_ns += value * scale;
  }
  if (total_ns > 1e21L) return bad();  // ~30000 years: a typo, not a keep-alive
  if (negative && total_ns > 0) return Millis{-1};
  // Round up, so that a positive sub-millisecond value does not turn into "now".
  return Millis{static_cast<int64_t>(std::ceil(total_ns / 1e6L))};
}

SchedConfig SchedConfig::from_env() {
  SchedConfig c;
  std::error_code ec;
  c.runner_exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (auto v = env_var("OLLAMA_NUM_PARALLEL")) {
    if (*v == "auto") {
      c.auto_parallel = true;  // the server's tuner moves the limit, from the memory-aware default
    } else {
      const int n = int_var("OLLAMA_NUM_PARALLEL", *v, 0);
      if (n > 0) c.num_parallel = n;  // 0: the default, as in Ollama
    }
  }
  if (auto v = env_var("OLLAMA_MAX_LOADED_MODELS")) {
    const int n = int_var("OLLAMA_MAX_LOADED_MODELS", *v, 0);
    if (n > 0) c.max_loaded_models = n;
  }
  if (auto v = env_var("OLLAMA_MAX_QUEUE")) c.max_queue = int_var("OLLAMA_MAX_QUEUE", *v, 1);
  if (auto v = env_var("OLLAMA_KEEP_ALIVE")) c.keep_alive = duration_var("OLLAMA_KEEP_ALIVE", *v);
  if (auto v = env_var("OLLAMA_CONTEXT_LENGTH")) c.default_num_ctx = int_var("OLLAMA_CONTEXT_LENGTH", *v, 1);
  if (auto v = env_var("OLLAMA_LOAD_TIMEOUT")) {
    c.load_timeout = duration_var("OLLAMA_LOAD_TIMEOUT", *v);
    if (c.load_timeout.count() <= 0) fail("OLLAMA_LOAD_TIMEOUT must be a positive duration, got '{}'", *v);
  }
  if (auto v = env_var("PARALLAMA_THREADS")) c.n_threads = int_var("PARALLAMA_THREADS", *v, 0);
  if (auto v = env_var("PARALLAMA_MEMORY_RESERVE")) c.memory_reserve = bytes_var("PARALLAMA_MEMORY_RESERVE", *v);
  if (auto v = env_var("PARALLAMA_AVAILABLE_MEMORY")) {
    const uint64_t n = bytes_var("PARALLAMA_AVAILABLE_MEMORY", *v);
    c.available_memory = [n] { return n; };
  }
  return c;
}

}  // namespace pl::sched
