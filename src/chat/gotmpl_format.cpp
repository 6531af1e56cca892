#include "chat/gotmpl_format.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "chat/pystr.h"

namespace pl::chat::go {

using Json = nlohmann::ordered_json;

namespace {

// Shortest round-trip digits and decimal exponent of d (d finite, non-zero).
void shortest(double d, std::string& digits, int& exp) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, std::fabs(d), std::chars_format::scientific);
  const std::string s(buf, r.ptr);
  const size_t e = s.find('e');
  for (size_t i = 0; i < e; ++i) {
    if (s[i] != '.') digits += s[i];
  }
  exp = std::stoi(s.substr(e + 1));
}

std::string e_format(bool neg, const std::string& digits, int exp, bool pad_exp) {
  std::string out = neg ? "-" : "";
  out += digits[0];
  if (digits.size() > 1) out += "." + digits.substr(1);
  char eb[16];
  std::snprintf(eb, sizeof eb, pad_exp ? "e%c%02d" : "e%c%d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  return out + eb;
}

std::string f_format(bool neg, const std::string& digits, int exp) {
  std::string out = neg ? "-" : "";
  if (exp < 0) return out + "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  const size_t n_int = static_cast<size_t>(exp) + 1;
  if (digits.size() <= n_int) return out + digits + std::string(n_int - digits.size(), '0');
  return out + digits.substr(0, n_int) + "." + digits.substr(n_int);
}

}  // namespace

// fmt's %v of a float64: %g with the shortest digits, which strconv writes in
// exponent form below 1e-4 and from 1e6 (fmt.Println(1000000.0) is "1e+06").
std::string go_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d < 0 ? "-Inf" : "+Inf";
  if (d == 0) return std::signbit(d) ? "-0" : "0";
  std::string digits;
  int exp;
  shortest(d, digits, exp);
  if (exp < -4 || exp >= 6) return e_format(d < 0, digits, exp, true);
  return f_format(d < 0, digits, exp);
}

// encoding/json's float64: 'f' form, 'e' below 1e-6 and from 1e21 (exponent without padding).
std::string json_float(double d) {
  if (!std::isfinite(d)) return "null";
  if (d == 0) return "0";
  std::string digits;
  int exp;
  shortest(d, digits, exp);
  const double a = std::fabs(d);
  if (a < 1e-6 || a >= 1e21) return e_format(d < 0, digits, exp, false);
  return f_format(d < 0, digits, exp);
}

void json_string(std::string& out, const std::string& s) { py::append_json_string(out, s, py::JsonDialect::Go); }

void json_value(std::string& out, const Json& j, jinja::Budget& budget) {
  budget.step();
  budget.size(out.size());
  switch (j.type()) {
    case Json::value_t::null: out += "null"; return;
    case Json::value_t::boolean: out += j.get<bool>() ? "true" : "false"; return;
    case Json::value_t::number_integer: out += std::to_string(j.get<int64_t>()); return;
    case Json::value_t::number_unsigned: out += std::to_string(j.get<uint64_t>()); return;
    case Json::value_t::number_float: out += json_float(j.get<double>()); return;
    case Json::value_t::string: json_string(out, j.get_ref<const std::string&>()); return;
    case Json::value_t::array: {
      out += '[';
      bool first = true;
      for (const Json& x : j) {
        if (!first) out += ',';
        first = false;
        json_value(out, x, budget);
      }
      out += ']';
      return;
    }
    case Json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [k, x] : j.items()) {
        if (!first) out += ',';
        first = false;
        json_string(out, k);
        out += ':';
        json_value(out, x, budget);
      }
      out += '}';
      return;
    }
    default: out += "null"; return;
  }
}

}  // namespace pl::chat::go
