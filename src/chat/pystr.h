// Python string semantics that chat templates rely on (Jinja templates run on
// Python strings in transformers): lengths and indices count code points,
// strip() knows Unicode whitespace, float repr is the shortest round trip.
// Strings are UTF-8; an invalid byte counts as one code point (U+FFFD when
// decoded) so that nothing here can loop or read out of bounds.
//
// Case mapping (upper/lower/title/capitalize) is one-to-one and covers ASCII,
// Latin-1, Latin Extended-A, Greek and Cyrillic (Python maps every script and
// also the few one-to-many cases such as ß -> SS).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pl::chat::py {

bool is_ascii(std::string_view s);
// Decodes the code point at s[i] and advances i; an invalid or truncated
// sequence yields U+FFFD and advances by one byte.
uint32_t decode_utf8(std::string_view s, size_t& i);
void append_utf8(std::string& out, uint32_t cp);
// Number of code points.
size_t length(std::string_view s);
// Byte offset where each code point starts, plus s.size() at the end
// (size length(s) + 1).
std::vector<size_t> offsets(std::string_view s);

// Python's str.isspace() for one code point.
bool is_space(uint32_t cp);

// str.strip / lstrip / rstrip; chars == nullopt strips whitespace.
std::string strip(std::string_view s, bool left, bool right, const std::optional<std::string>& chars);
// str.split / rsplit; sep == nullopt splits on runs of whitespace and drops
// empty parts. maxsplit < 0 means no limit. Throws pl::Error on an empty sep.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
// str.splitlines(): breaks at \n \r \r\n \v \f \x1c \x1d \x1e \x85 U+2028 U+2029.
std::vector<std::string> splitlines(std::string_view s, bool keepends);
// str.replace(old, new, count); count < 0 replaces all.
std::string replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
// str.title(): a letter after a non-letter is upper-cased, every other letter lower-cased.
std::string title(std::string_view s);
// str.capitalize(): the first character upper-cased, the rest lower-cased.
std::string capitalize(std::string_view s);

// A string as a quoted JSON string. Both dialects escape the quote, the
// backslash, \n \r \t \b \f and other control characters (\u00XX).
//   Python: json.dumps; ensure_ascii also writes every non-ASCII code point as
//           \uXXXX (surrogate pairs above U+FFFF); otherwise bytes pass through.
//   Go:     encoding/json; HTML-safe (<, >, & as \u003c ...), U+2028/9 escaped,
//           an invalid UTF-8 byte as \ufffd.
enum class JsonDialect { Python, PythonAscii, Go };
void append_json_string(std::string& out, std::string_view s, JsonDialect dialect);

// repr() of a str: quoted with ' (or " when the text has ' and no "), with
// backslash escapes for the quote, backslash and control characters.
std::string repr(std::string_view s);
// repr() of a float: shortest round-trip digits, exponent form below 1e-4 and
// from 1e16, "1.0" for integral values, "inf", "-inf", "nan".
std::string float_repr(double d);

}  // namespace pl::chat::py
