// JSON schema (or "json") -> grammar over bytes.
//
// Output shape, chosen so that a model cannot wander:
//   - whitespace: at most one optional space after ':' and ',', none anywhere
//     else, nothing before or after the root value;
//   - object properties in the schema's order (keep it by passing an
//     ordered_json: nlohmann::json sorts keys), required ones present,
//     optional ones omissible; additionalProperties is false by default when
//     properties are given (OpenAI strict mode, Ollama in practice);
//   - numbers: at most 18 integer digits, 20 fraction digits and 2 exponent
//     digits (so a model cannot loop on digits, and every value fits an int64
//     or a finite double);
//   - strings: any Unicode except unescaped control characters, '"' and '\\';
//     escapes \" \\ \/ \b \f \n \r \t and \uXXXX (surrogates only as valid pairs).
//
// "json" means any JSON *object* at the top level (what clients of Ollama's
// format:"json" and OpenAI's json_object expect); a schema `{}` or `true` means
// any JSON value.
//
// Supported: type (also arrays of types), properties, required,
// additionalProperties, enum, const, anyOf, oneOf (as anyOf), allOf (merged),
// $ref to "#", "#/$defs/..", "#/definitions/.." or any local JSON pointer
// (recursion works), items, prefixItems (and draft-4 array `items` with
// additionalItems), minItems, maxItems, minLength, maxLength, format date,
// time, date-time, uuid (other formats: any string), nullable.
// Not enforced (accepted and ignored): minimum, maximum, exclusiveMinimum,
// exclusiveMaximum and multipleOf, except that an integer or number with a
// minimum (or exclusiveMinimum) >= 0 gets no minus sign; uniqueItems.
// Rejected with a pl::Error naming the keyword: pattern, patternProperties,
// not, if/then/else, contains, propertyNames, dependencies, minProperties,
// maxProperties, unevaluated*, non-local $ref.
#pragma once

#include <nlohmann/json.hpp>

#include "grammar/ir.h"

namespace pl::grammar {

Grammar compile_schema(const nlohmann::ordered_json& format);

}  // namespace pl::grammar
