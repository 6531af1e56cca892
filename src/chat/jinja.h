// Chat templates in Jinja, as models ship them in tokenizer.chat_template: our
// own interpreter of the Jinja subset that real chat templates use, with the
// semantics of transformers' apply_chat_template (trim_blocks, lstrip_blocks,
// Python values and string methods, tojson without HTML escaping).
//
// Supported:
//   statements  if/elif/else, for (loop.index/index0/revindex/revindex0/first/
//               last/length/previtem/nextitem/cycle, for-else, `for x in y if c`,
//               tuple unpacking, break/continue), set (`set x = ...`,
//               `set a, b = ...`, `set ns.attr = ...`, block set with filters),
//               macro + call/caller, filter blocks, with, raw, comments
//   expressions literals, lists, tuples, dicts, attribute/subscript, slicing
//               ([::-1] too), + - * / // % ** ~, comparisons (chained), in/not
//               in, and/or/not, `a if c else b`, filters with arguments, tests
//               with `is`/`is not`
//   globals     range, namespace, dict, raise_exception(msg) (-> pl::Error with
//               that message), strftime_now(format) (RenderOptions::now)
//   filters     abs attr capitalize count d default dictsort e escape first float
//               format indent int items join last length list lower map max min
//               reject rejectattr replace reverse round safe select selectattr sort
//               string sum title tojson trim unique upper wordcount
//   tests       boolean callable defined divisibleby eq/equalto/== even false float
//               ge gt in integer iterable le lower lt mapping ne none number odd
//               sameas sequence string true undefined upper
//   methods     str: capitalize count endswith find format index isalnum isalpha
//               isdigit islower isspace isupper join lower lstrip replace rfind
//               rsplit rstrip split splitlines startswith strip title upper;
//               dict: get items keys values; list: count index
// Undefined: a missing variable, attribute or index is Undefined; it is falsy,
// prints as "", iterates as empty, has length 0, `is defined` is false, and an
// attribute or index of it is again Undefined (more lenient than Jinja, which
// raises there). Arithmetic on it, calling it, or tojson of it is an error.
// Not supported (a clear parse error): include/import/extends/block, recursive
// loops, *args/**kwargs in calls. Case mapping covers Latin, Greek and
// Cyrillic letters (see pystr.h). Macros see the template's top-level
// variables, not the variables around their definition.
//
// Limits: a render stops with pl::Error once it has taken max_steps steps (one
// per node evaluated, loop iteration, element built or compared, 64 bytes
// written), once any string or the output exceeds max_output_bytes, once it
// has allocated max_memory_bytes, once macro calls nest deeper than
// max_call_depth, or a value nests deeper than 128.
// Syntax nesting is capped at 64 levels. So no template can hang the server or
// exhaust its memory.
//
// Errors (parse and render) throw pl::Error "line L, column C: message".
// A Template is immutable after parse and may be rendered from many threads.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chat/limits.h"

namespace pl::chat {

namespace jinja {
struct Program;
}

struct RenderOptions {
  RenderLimits limits;
  // What strftime_now() formats (local time, as Python's datetime.now());
  // unset means the current local time. Tests set it to stay deterministic.
  std::optional<std::tm> now;
};

class Template {
 public:
  static Template parse(std::string_view source);

  // context: a JSON object whose keys become the template's variables, e.g.
  // messages, tools, add_generation_prompt, bos_token, eos_token. Objects keep
  // their key order (tojson prints keys in that order, as Python dicts do);
  // a nlohmann::json converts implicitly (its keys are sorted).
  std::string render(const nlohmann::ordered_json& context, const RenderOptions& options = {}) const;

  const std::string& source() const;

 private:
  std::shared_ptr<const jinja::Program> program_;
};

}  // namespace pl::chat
