// Go text/template, the syntax of Ollama's Modelfile TEMPLATE: our own
// implementation of the subset Ollama templates use, over JSON data.
//
//   text and actions   {{ pipeline }}, {{- and -}} trim the whitespace on that
//                      side, {{/* comments */}}
//   control            if / else if / else / end, range (over arrays, objects
//                      in key order, integers; {{ range $i, $e := ... }}; else;
//                      break / continue), with / else with / else
//   pipelines          commands joined by |, the previous result passed as the
//                      last argument; $x := ... declares, $x = ... assigns; $ is
//                      the data; .A.B fields of dot; (pipeline).Field
//   functions          and or not eq ne lt le gt ge len index slice print
//                      printf println, and Ollama's json
//
// Data is JSON. A field .Name matches an object key exactly, else the key that
// equals it ignoring case and underscores, so Ollama's Go names work on JSON
// keys: .ToolCalls finds "tool_calls", .Function.Arguments finds
// "function"/"arguments". A missing field or null prints as "<no value>" (Go's
// missingkey=zero on maps) and is false. Objects and arrays print as JSON,
// which is what Ollama's api.Tool, api.Tools and tool-call arguments print as
// (their String methods); printing and json escape <, >, & as Go's
// encoding/json does, and keep the data's key order (Go structs print in field
// order and maps sorted: pass objects built that way).
//
// Not supported (parse error): define, template, block, and functions other
// than the above. Errors throw pl::Error "line L, column C: ...". The limits
// of chat/limits.h apply (steps, output size, memory).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/limits.h"

namespace pl::chat {

namespace go {
struct Tree;
}

class GoTemplate {
 public:
  static GoTemplate parse(std::string_view source);

  std::string render(const nlohmann::ordered_json& data, const RenderLimits& limits = {}) const;

  // Ollama's Template.Vars(): every field and variable name the template
  // mentions, lower-cased, sorted, without duplicates.
  std::vector<std::string> identifiers() const;
  // Ollama's treatment of legacy templates: one with {{ .Response }} appended
  // (for templates that name neither messages nor response), and one cut
  // right after the first {{ .Response }} (to render the last, open turn).
  GoTemplate with_response_appended() const;
  GoTemplate cut_after_response() const;

  const std::string& source() const;

 private:
  std::shared_ptr<const go::Tree> tree_;
};

}  // namespace pl::chat
