// A TOML parser, written here because no TOML library is packaged on every machine we run on.
//
// defines: tessera::train::TomlValue, TomlEntry, parse_toml, parse_toml_value
//
// Training configs need only part of TOML, and the parser returns them flattened: every value
// comes back as one entry with its full dotted key ("optim.lr"), in file order, with the line
// it was defined on. Supported: tables `[a.b]`, dotted and quoted keys, basic strings (all
// escapes, \uXXXX), literal strings, multi-line strings of both kinds, integers (sign, `_`
// separators, 0x/0o/0b), floats (fraction, exponent, inf, nan), booleans, arrays (nested,
// multi-line, trailing comma, comments inside), inline tables (flattened into dotted keys) and
// comments. Not supported, each with a clear error: arrays of tables `[[x]]`, dates and times.
// Every error is "FILE:LINE:COLUMN: what was expected"; redefining a key or a table is an
// error, as TOML requires.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::train {

struct TomlValue {
  enum class Kind { string, integer, floating, boolean, array };
  Kind kind = Kind::string;
  std::string string;
  int64_t integer = 0;
  double floating = 0.0;
  bool boolean = false;
  std::vector<TomlValue> array;

  static TomlValue of_string(std::string s);
  static TomlValue of_integer(int64_t v);
  static TomlValue of_floating(double v);
  static TomlValue of_boolean(bool v);
  static TomlValue of_array(std::vector<TomlValue> items);

  // "string", "integer", "float", "boolean", "array".
  const char* type_name() const;
  // The value written back as TOML (strings quoted and escaped; floats round-trip exactly).
  std::string to_toml() const;
  bool operator==(const TomlValue& other) const;
};

struct TomlEntry {
  std::string key;  // full dotted key, bare parts unquoted: a."b.c" -> a.b.c
  TomlValue value;
  int line = 0;
};

// Parses a whole document. `source` names it in errors (usually the file path).
std::vector<TomlEntry> parse_toml(std::string_view text, const std::string& source);
// Parses one value, as on the right of `=` (e.g. from `--set key=value`); throws if `text`
// is not exactly one TOML value.
TomlValue parse_toml_value(std::string_view text, const std::string& source);

}  // namespace tessera::train
