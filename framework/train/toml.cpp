// The TOML parser: one recursive-descent pass over the text that emits flattened entries.
//
// The parser keeps the position (line and column) of the character it looks at, so every error
// can say where it happened and what was expected there. Key bookkeeping (`defined_`) enforces
// TOML's rules that a key is defined once, a table header appears once, a value is never also
// used as a table and an inline table is closed once written.
#include "framework/train/toml.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "framework/core/error.h"

namespace tessera::train {

TomlValue TomlValue::of_string(std::string s) {
  TomlValue v;
  v.kind = Kind::string;
  v.string = std::move(s);
  return v;
}
TomlValue TomlValue::of_integer(int64_t value) {
  TomlValue v;
  v.kind = Kind::integer;
  v.integer = value;
  return v;
}
TomlValue TomlValue::of_floating(double value) {
  TomlValue v;
  v.kind = Kind::floating;
  v.floating = value;
  return v;
}
TomlValue TomlValue::of_boolean(bool value) {
  TomlValue v;
  v.kind = Kind::boolean;
  v.boolean = value;
  return v;
}
TomlValue TomlValue::of_array(std::vector<TomlValue> items) {
  TomlValue v;
  v.kind = Kind::array;
  v.array = std::move(items);
  return v;
}

const char* TomlValue::type_name() const {
  switch (kind) {
    case Kind::string: return "string";
    case Kind::integer: return "integer";
    case Kind::floating: return "float";
    case Kind::boolean: return "boolean";
    case Kind::array: return "array";
  }
  return "?";
}

namespace {

std::string quote_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string format_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, end);
  // TOML needs a fraction or an exponent to read the number back as a float.
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

}  // namespace

std::string TomlValue::to_toml() const {
  switch (kind) {
    case Kind::string: return quote_string(string);
    case Kind::integer: return std::to_string(integer);
    case Kind::floating: return format_float(floating);
    case Kind::boolean: return boolean ? "true" : "false";
    case Kind::array: {
      std::string out = "[";
      for (size_t i = 0; i < array.size(); ++i) out += (i ? ", " : "") + array[i].to_toml();
      return out + "]";
    }
  }
  return "";
}

bool TomlValue::operator==(const TomlValue& other) const {
  if (kind != other.kind) return false;
  switch (kind) {
    case Kind::string: return string == other.string;
    case Kind::integer: return integer == other.integer;
    case Kind::floating:
      return floating == other.floating || (std::isnan(floating) && std::isnan(other.floating));
    case Kind::boolean: return boolean == other.boolean;
    case Kind::array: return array == other.array;
  }
  return false;
}

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_bare_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '-';
}
bool is_value_token_char(char c) { return is_bare_key_char(c) || c == '+' || c == '.' || c == ':'; }

std::string join_key(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "." : "") + parts[i];
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Parser {
 public:
  Parser(std::string_view text, std::string source) : text_(text), source_(std::move(source)) {}

  std::vector<TomlEntry> document() {
    std::vector<TomlEntry> out;
    std::vector<std::string> table;
    while (!at_end()) {
      skip_ws();
      if (at_end()) break;
      const char c = peek();
      if (c == '#' || c == '\n' || c == '\r') {
        end_of_line("a comment");
        continue;
      }
      if (c == '[') {
        if (peek(1) == '[') fail("arrays of tables `[[...]]` are not supported in Tessera configs");
        advance();
        skip_ws();
        table = key_parts();
        skip_ws();
        if (peek() != ']') fail("expected `]` to close the table header [", join_key(table), "], found ", found());
        advance();
        define_table(join_key(table));
        end_of_line("a table header");
        continue;
      }
      key_value(table, out);
      end_of_line("a value");
    }
    return out;
  }

  TomlValue single_value() {
    skip_ws();
    TomlValue v = value("value");
    skip_ws();
    if (!at_end()) fail("unexpected ", found(), " after the value");
    return v;
  }

 private:
  enum class KeyKind { value, implicit_table, explicit_table, inline_table };
  struct KeyInfo {
    KeyKind kind;
    int line;
  };

  // ---- position ----
  bool at_end() const { return pos_ >= text_.size(); }
  char peek(size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }
  bool starts_with(std::string_view s) const { return text_.substr(pos_, s.size()) == s; }
  void advance(size_t n = 1) {
    for (size_t i = 0; i < n && !at_end(); ++i) {
      if (text_[pos_] == '\n') {
        ++line_;
        line_start_ = pos_ + 1;
      }
      ++pos_;
    }
  }
  std::string found() const {
    if (at_end()) return "end of file";
    const char c = peek();
    if (c == '\n' || c == '\r') return "end of line";
    return detail::cat("'", c, "'");
  }
  template <typename... Parts>
  [[noreturn]] void fail(Parts&&... parts) const {
    detail::throw_error(detail::cat(source_, ":", line_, ":", pos_ - line_start_ + 1, ": ",
                                    std::forward<Parts>(parts)...));
  }

  // ---- whitespace, comments, line ends ----
  void skip_ws() {
    while (peek() == ' ' || peek() == '\t') advance();
  }
  void skip_comment() {
    if (peek() != '#') return;
    while (!at_end() && peek() != '\n') {
      const unsigned char c = static_cast<unsigned char>(peek());
      if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) fail("control character in a comment");
      advance();
    }
  }
  bool newline() {
    if (peek() == '\n') {
      advance();
      return true;
    }
    if (peek() == '\r' && peek(1) == '\n') {
      advance(2);
      return true;
    }
    return false;
  }
  void end_of_line(const char* after) {
    skip_ws();
    skip_comment();
    if (at_end() || newline()) return;
    fail("expected the end of the line after ", after, ", found ", found());
  }
  void skip_ws_comments_newlines() {
    for (;;) {
      skip_ws();
      skip_comment();
      if (!newline()) return;
    }
  }

  // ---- keys ----
  std::string simple_key() {
    const char c = peek();
    if (c == '"') {
      if (starts_with("\"\"\"")) fail("a key cannot be a multi-line string");
      return basic_string();
    }
    if (c == '\'') {
      if (starts_with("'''")) fail("a key cannot be a multi-line string");
      return literal_string();
    }
    const size_t start = pos_;
    while (is_bare_key_char(peek())) advance();
    if (pos_ == start) fail("expected a key (letters, digits, `_`, `-` or a quoted string), found ", found());
    return std::string(text_.substr(start, pos_ - start));
  }
  std::vector<std::string> key_parts() {
    std::vector<std::string> parts{simple_key()};
    for (;;) {
      skip_ws();
      if (peek() != '.') return parts;
      advance();
      skip_ws();
      parts.push_back(simple_key());
    }
  }

  void define_prefixes(const std::string& key, int line) {
    for (size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1)) {
      const std::string prefix = key.substr(0, dot);
      auto it = defined_.find(prefix);
      if (it == defined_.end()) {
        defined_[prefix] = {KeyKind::implicit_table, line};
      } else if (it->second.kind == KeyKind::value) {
        fail("`", prefix, "` is a value (line ", it->second.line, ") and cannot also be a table");
      } else if (it->second.kind == KeyKind::inline_table) {
        fail("inline table `", prefix, "` (line ", it->second.line, ") cannot be extended");
      }
    }
  }
  void define_value(const std::string& key, int line) {
    define_prefixes(key, line);
    auto it = defined_.find(key);
    if (it != defined_.end()) fail("key `", key, "` is defined twice (first at line ", it->second.line, ")");
    defined_[key] = {KeyKind::value, line};
  }
  void define_table(const std::string& key) {
    define_prefixes(key, line_);
    auto it = defined_.find(key);
    if (it != defined_.end()) {
      if (it->second.kind == KeyKind::value) fail("`", key, "` is a value (line ", it->second.line, "), not a table");
      if (it->second.kind != KeyKind::implicit_table)
        fail("table [", key, "] is defined twice (first at line ", it->second.line, ")");
    }
    defined_[key] = {KeyKind::explicit_table, line_};
  }

  void key_value(const std::vector<std::string>& table, std::vector<TomlEntry>& out) {
    const int line = line_;
    std::vector<std::string> parts = table;
    for (auto& p : key_parts()) parts.push_back(std::move(p));
    const std::string key = join_key(parts);
    skip_ws();
    if (peek() != '=') fail("expected `=` after the key `", key, "`, found ", found());
    advance();
    skip_ws();
    if (peek() == '{') {
      inline_table(parts, line, out);
      return;
    }
    TomlValue v = value(key);
    define_value(key, line);
    out.push_back({key, std::move(v), line});
  }

  void inline_table(const std::vector<std::string>& parts, int line, std::vector<TomlEntry>& out) {
    const std::string key = join_key(parts);
    if (auto it = defined_.find(key); it != defined_.end())
      fail("key `", key, "` is defined twice (first at line ", it->second.line, ")");
    define_prefixes(key + ".x", line);
    advance();  // {
    skip_ws();
    if (peek() == '}') {
      advance();
    } else {
      for (;;) {
        key_value(parts, out);
        skip_ws();
        if (peek() == ',') {
          advance();
          skip_ws();
          continue;
        }
        if (peek() == '}') {
          advance();
          break;
        }
        fail("expected `,` or `}` in the inline table `", key, "`, found ", found());
      }
    }
    defined_[key] = {KeyKind::inline_table, line};
  }

  // ---- values ----
  TomlValue value(const std::string& key) {
    const char c = peek();
    if (c == '"') return TomlValue::of_string(starts_with("\"\"\"") ? multiline_basic_string() : basic_string());
    if (c == '\'') return TomlValue::of_string(starts_with("'''") ? multiline_literal_string() : literal_string());
    if (c == '[') return array(key);
    if (c == '{') fail("inline tables inside arrays are not supported in Tessera configs");
    const size_t start = pos_;
    const int column = static_cast<int>(pos_ - line_start_ + 1);
    while (is_value_token_char(peek())) advance();
    if (pos_ == start)
      fail("expected a value (string, number, boolean or array) for `", key, "`, found ", found());
    return scalar(std::string(text_.substr(start, pos_ - start)), key, column);
  }

  TomlValue array(const std::string& key) {
    const int open_line = line_;
    advance();  // [
    std::vector<TomlValue> items;
    for (;;) {
      skip_ws_comments_newlines();
      if (at_end()) fail("unterminated array for `", key, "` (opened at line ", open_line, ")");
      if (peek() == ']') break;
      items.push_back(value(key));
      skip_ws_comments_newlines();
      if (peek() == ',') {
        advance();
        continue;
      }
      if (peek() == ']') break;
      if (at_end()) fail("unterminated array for `", key, "` (opened at line ", open_line, ")");
      fail("expected `,` or `]` in the array for `", key, "`, found ", found());
    }
    advance();  // ]
    return TomlValue::of_array(std::move(items));
  }

  template <typename... Parts>
  [[noreturn]] void fail_at(int column, Parts&&... parts) const {
    detail::throw_error(detail::cat(source_, ":", line_, ":", column, ": ", std::forward<Parts>(parts)...));
  }

  // Digits with `_` separators, each `_` between two digits (of `base`); returns them without `_`.
  std::string digits(const std::string& token, size_t& i, int base, const std::string& key, int column) {
    auto is_base_digit = [base](char c) {
      if (base == 16) return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      if (base == 8) return c >= '0' && c <= '7';
      if (base == 2) return c == '0' || c == '1';
      return is_digit(c);
    };
    std::string out;
    while (i < token.size()) {
      const char c = token[i];
      if (is_base_digit(c)) {
        out += c;
      } else if (c == '_') {
        if (out.empty() || i + 1 >= token.size() || !is_base_digit(token[i + 1]))
          fail_at(column, "bad number `", token, "` for `", key, "`: `_` must stand between two digits");
      } else {
        break;
      }
      ++i;
    }
    return out;
  }

  TomlValue scalar(const std::string& token, const std::string& key, int column) {
    if (token == "true") return TomlValue::of_boolean(true);
    if (token == "false") return TomlValue::of_boolean(false);
    if (token == "inf" || token == "+inf") return TomlValue::of_floating(std::numeric_limits<double>::infinity());
    if (token == "-inf") return TomlValue::of_floating(-std::numeric_limits<double>::infinity());
    if (token == "nan" || token == "+nan" || token == "-nan")
      return TomlValue::of_floating(std::numeric_limits<double>::quiet_NaN());
    const auto bad = [&](const char* why) -> TomlValue {
      fail_at(column, "bad value `", token, "` for `", key, "`: ", why);
    };
    if (token.size() >= 10 && is_digit(token[0]) && token[4] == '-' && token[7] == '-')
      return bad("dates and times are not supported in Tessera configs");
    if (token.size() >= 5 && is_digit(token[0]) && token[2] == ':')
      return bad("dates and times are not supported in Tessera configs");
    if (!is_digit(token[0]) && token[0] != '+' && token[0] != '-')
      return bad("expected a number, a boolean (true/false), or a quoted string");

    size_t i = 0;
    if (token.size() > 2 && token[0] == '0' && (token[1] == 'x' || token[1] == 'o' || token[1] == 'b')) {
      const int base = token[1] == 'x' ? 16 : token[1] == 'o' ? 8 : 2;
      i = 2;
      const std::string d = digits(token, i, base, key, column);
      if (d.empty() || i != token.size()) return bad("expected digits after the base prefix");
      uint64_t v = 0;
      auto [end, ec] = std::from_chars(d.data(), d.data() + d.size(), v, base);
      if (ec != std::errc() || v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return bad("integer out of the 64-bit range");
      return TomlValue::of_integer(static_cast<int64_t>(v));
    }

    std::string number;
    if (token[0] == '+' || token[0] == '-') {
      if (token[0] == '-') number += '-';
      i = 1;
    }
    const std::string whole = digits(token, i, 10, key, column);
    if (whole.empty()) return bad("expected digits");
    if (whole.size() > 1 && whole[0] == '0') return bad("leading zeros are not allowed");
    number += whole;
    bool is_float = false;
    if (i < token.size() && token[i] == '.') {
      ++i;
      const std::string fraction = digits(token, i, 10, key, column);
      if (fraction.empty()) return bad("expected digits after the decimal point");
      number += "." + fraction;
      is_float = true;
    }
    if (i < token.size() && (token[i] == 'e' || token[i] == 'E')) {
      ++i;
      number += 'e';
      if (i < token.size() && (token[i] == '+' || token[i] == '-')) number += token[i++];
      const std::string exponent = digits(token, i, 10, key, column);
      if (exponent.empty()) return bad("expected digits in the exponent");
      number += exponent;
      is_float = true;
    }
    if (i != token.size()) return bad("not a number, boolean or quoted string");
    if (is_float) {
      double v = 0;
      auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), v);
      if (ec != std::errc()) return bad("float out of range");
      return TomlValue::of_floating(v);
    }
    int64_t v = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), v);
    if (ec != std::errc()) return bad("integer out of the 64-bit range");
    return TomlValue::of_integer(v);
  }

  // ---- strings ----
  void check_string_char(char c, bool multiline) const {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '\n' && !multiline) fail("unterminated string (strings on one line end with a quote)");
    if ((u < 0x20 && c != '\t' && c != '\n' && c != '\r') || u == 0x7f)
      fail("control character in a string (write it as an escape like \\u001f)");
  }

  uint32_t hex_escape(int n) {
    uint32_t cp = 0;
    for (int k = 0; k < n; ++k) {
      const char c = peek();
      int d = -1;
      if (is_digit(c)) d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      if (d < 0) fail("expected ", n, " hex digits in a \\", n == 4 ? 'u' : 'U', " escape, found ", found());
      cp = cp * 16 + static_cast<uint32_t>(d);
      advance();
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) fail("escape names no Unicode scalar value");
    return cp;
  }

  // After a backslash: appends the escaped character.
  void escape(std::string& out) {
    const char c = peek();
    advance();
    switch (c) {
      case 'b': out += '\b'; break;
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'f': out += '\f'; break;
      case 'r': out += '\r'; break;
      case 'e': out += '\x1b'; break;
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case 'u': append_utf8(out, hex_escape(4)); break;
      case 'U': append_utf8(out, hex_escape(8)); break;
      default: fail("unknown escape `\\", c, "` in a string (use \\\\ for a backslash)");
    }
  }

  std::string basic_string() {
    advance();  // "
    std::string out;
    for (;;) {
      if (at_end()) fail("unterminated string");
      const char c = peek();
      if (c == '"') {
        advance();
        return out;
      }
      check_string_char(c, false);
      advance();
      if (c == '\\') escape(out);
      else out += c;
    }
  }

  std::string literal_string() {
    advance();  // '
    std::string out;
    for (;;) {
      if (at_end()) fail("unterminated string");
      const char c = peek();
      if (c == '\'') {
        advance();
        return out;
      }
      check_string_char(c, false);
      out += c;
      advance();
    }
  }

  // Reads the closing run of quotes: up to two extra quotes belong to the content.
  bool closing_quotes(char quote, std::string& out) {
    if (!(peek() == quote && peek(1) == quote && peek(2) == quote)) return false;
    size_t run = 3;
    while (run < 5 && peek(run) == quote) ++run;
    out.append(run - 3, quote);
    advance(run);
    return true;
  }

  std::string multiline_basic_string() {
    const int open_line = line_;
    advance(3);
    newline();  // a newline right after the opening quotes is trimmed
    std::string out;
    for (;;) {
      if (at_end()) fail("unterminated multi-line string (opened at line ", open_line, ")");
      if (closing_quotes('"', out)) return out;
      const char c = peek();
      if (c == '\\') {
        // A backslash at the end of a line trims the newline and the whitespace after it.
        size_t k = 1;
        while (peek(k) == ' ' || peek(k) == '\t') ++k;
        if (peek(k) == '\n' || (peek(k) == '\r' && peek(k + 1) == '\n')) {
          advance(k);
          while (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r') advance();
          continue;
        }
        advance();
        escape(out);
        continue;
      }
      check_string_char(c, true);
      out += c;
      advance();
    }
  }

  std::string multiline_literal_string() {
    const int open_line = line_;
    advance(3);
    newline();
    std::string out;
    for (;;) {
      if (at_end()) fail("unterminated multi-line string (opened at line ", open_line, ")");
      if (closing_quotes('\'', out)) return out;
      check_string_char(peek(), true);
      out += peek();
      advance();
    }
  }

  std::string_view text_;
  std::string source_;
  size_t pos_ = 0;
  int line_ = 1;
  size_t line_start_ = 0;
  std::map<std::string, KeyInfo> defined_;
};

}  // namespace

std::vector<TomlEntry> parse_toml(std::string_view text, const std::string& source) {
  return Parser(text, source).document();
}

TomlValue parse_toml_value(std::string_view text, const std::string& source) {
  return Parser(text, source).single_value();
}

}  // namespace tessera::train
