// Writing Modelfiles that parse_modelfile (store/store.h) reads back unchanged.
//
// The reader has no escapes (as Ollama's has none): a quoted value ends at the
// first line whose trimmed text ends with its closing quote. So the writer
// tries the forms Ollama writes, """triple quoted""" and "quoted", and keeps
// the first one the reader takes back as exactly the value.
#pragma once

#include <string>
#include <string_view>

#include "store/store.h"

namespace pl::store {

struct ModelfileValue {
  std::string text;   // what follows the instruction's name (and its blank)
  bool exact = true;  // false: no form reads back as the value (see write_modelfile)
};

// One value: """triple""" first when `triple` is set or the value spans lines,
// else "quoted" first; the other form next. (A one-line value always reads
// back triple quoted, so a bare form is never needed.)
ModelfileValue quote_modelfile_value(std::string_view value, bool triple);

// FROM, TEMPLATE, SYSTEM, PARAMETER (a list one line per element), MESSAGE and
// LICENSE lines for r (its `files` are not written): parse_modelfile gives r
// back. The one thing no form can carry is a line of a value, not its last,
// ending in """ (or a CR before a line feed, which reads back as a plain line
// feed): such a value is written triple quoted after a '#' line that says it
// will not read back as it is.
std::string write_modelfile(const CreateRequest& r);

}  // namespace pl::store
