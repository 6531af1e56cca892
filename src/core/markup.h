// Escaping text for HTML and XML (Jinja's `escape` filter, the bench report's
// SVG): the five markup characters as the entities markupsafe writes, which
// both languages accept, so one table serves both.
#pragma once

#include <string>
#include <string_view>

namespace pl {

inline std::string markup_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace pl
