// Model names. A name becomes four directory levels under <root>/manifests, so
// parsing is the only guard against a name that walks out of the store: every
// part is checked against a small character set before any path is built.
#include <string>

#include "store/store.h"

namespace pl::store {
namespace {

constexpr std::string_view kDefaultHost = "registry.ollama.ai";
constexpr std::string_view kDefaultNamespace = "library";

// The name as it may appear in a message: control bytes (a NUL would cut the
// message short) shown as \xNN.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  return out;
}

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// Limits as Ollama's name rules set them: the host may be a long DNS name with a port.
void check_part(std::string_view raw, std::string_view what, std::string_view part, size_t max_len,
                bool allow_colon) {
  const std::string full = printable(raw);
  if (part.empty()) fail("invalid model name '{}': empty {}", full, what);
  if (part.size() > max_len) fail("invalid model name '{}': {} longer than {} characters", full, what, max_len);
  // A leading '.' or '-' rules out ".", ".." and option-like or hidden names;
  // tags may start with '_' as Ollama's do.
  if (!is_alnum(part[0]) && !(what == "tag" && part[0] == '_'))
    fail("invalid model name '{}': {} '{}' must start with a letter or digit", full, what, printable(part));
  for (char c : part) {
    bool ok = is_alnum(c) || c == '.' || c == '-' || c == '_' || (allow_colon && c == ':');
    if (!ok) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        fail("invalid model name '{}': control character in {}", full, what);
      fail("invalid model name '{}': character '{}' not allowed in {}", full, c, what);
    }
  }
  if (part.find("..") != std::string_view::npos) fail("invalid model name '{}': '..' in {}", full, what);
}

}  // namespace

ModelName ModelName::parse(std::string_view s) {
  if (s.empty()) fail("invalid model name: empty");
  if (s.size() > 600) fail("invalid model name: longer than 600 characters");
  ModelName n;
  std::string_view rest = s;
  // The tag separator is the last ':' after the last '/', so a host's port
  // ("localhost:5000/ns/m:tag") is not mistaken for one.
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    n.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    check_part(s, "tag", n.tag, 80, false);
  }
  std::vector<std::string_view> parts;
  while (true) {
    size_t p = rest.find('/');
    parts.push_back(rest.substr(0, p));
    if (p == std::string_view::npos) break;
    rest = rest.substr(p + 1);
  }
  if (parts.size() > 3) fail("invalid model name '{}': expected [host/][namespace/]model[:tag]", printable(s));
  n.model = std::string(parts.back());
  check_part(s, "model", n.model, 80, false);
  if (parts.size() >= 2) {
    n.ns = std::string(parts[parts.size() - 2]);
    check_part(s, "namespace", n.ns, 80, false);
  }
  if (parts.size() == 3) {
    n.host = std::string(parts[0]);
    check_part(s, "host", n.host, 350, true);
  }
  return n;
}

std::string ModelName::display() const {
  std::string out;
  if (host != kDefaultHost) {
    out = host + "/" + ns + "/";
  } else if (ns != kDefaultNamespace) {
    out = ns + "/";
  }
  return out + model + ":" + tag;
}

std::filesystem::path ModelName::manifest_path() const { return std::filesystem::path(host) / ns / model / tag; }

}  // namespace pl::store
