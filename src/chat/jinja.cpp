#include "chat/jinja.h"

#include <fmt/core.h>

#include "chat/jinja_interp.h"
#include "core/error.h"

namespace pl::chat {

Template Template::parse(std::string_view source) {
  Template t;
  t.program_ = jinja::parse_program(source);
  return t;
}

const std::string& Template::source() const { return program_->source; }

std::string Template::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
  if (!context.is_object() && !context.is_null()) pl::fail("template context must be a JSON object");
  jinja::Scope root;
  jinja::Interp in(options, root);
  try {
    if (context.is_object()) {
      for (const auto& [k, v] : context.items()) root.set(k, jinja::Value::from_json(v));
    }
    in.exec(program_->body, root);
  } catch (const jinja::Fault& e) {
    pl::fail("line {}, column {}: {}", in.pos.line, in.pos.col, e.what());
  } catch (const pl::Error& e) {
    pl::fail("line {}, column {}: {}", in.pos.line, in.pos.col, e.what());
  }
  return std::move(in.out);
}

}  // namespace pl::chat
