// Config: the flattened key -> value settings of one run, read from TOML plus `--set` overrides.
//
// defines: tessera::train::Config
//
// A config file is TOML (see toml.h); the Config holds its values under full dotted keys
// ("optim.lr"), each remembering where it came from ("examples/x.toml:12" or "--set"). Code
// reads settings through typed getters, most with a default; every read marks the key as used
// and records the default it fell back to, so that
//  * `check_all_used()` can reject keys nobody read — a typo like `optim.lrr` is an error naming
//    the key, its file and line, and the nearest known key ("did you mean `optim.lr`?");
//  * `to_toml()` / `to_json()` give the effective configuration (file values, overrides and the
//    defaults that applied), which runs save next to their logs and checkpoints.
// Jobs read all of their settings before training starts and then call check_all_used(), so a
// bad key fails in the first second, not after an hour. Type mismatches name the key, where it
// was set, the expected type and the value found. Integers are accepted where a float is
// expected, and floats with an integral value (1e4) where an integer is.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/train/toml.h"

namespace tessera::train {

class Config {
 public:
  Config() = default;
  // Errors name the path when it cannot be read, and FILE:LINE:COLUMN on a syntax error.
  static Config from_file(const std::string& path);
  static Config from_string(std::string_view text, const std::string& source = "<string>");

  // `key=value` from the command line: the value is parsed as a TOML value (`0.1`, `true`,
  // `[1, 2]`, `"text"`) or, if that fails, taken as a bare string (`job=classifier`).
  // Replaces the key's value if the file set it.
  void set_override(const std::string& assignment);
  void set(const std::string& key, TomlValue value, const std::string& origin);

  // The file the config came from ("<string>" or "" when built in code).
  const std::string& source() const { return source_; }
  // Whether the key is set. Does not mark it used, but makes it a known key for suggestions.
  bool has(const std::string& key) const;
  std::vector<std::string> keys() const;                                   // in definition order

  // Typed getters. Without a default the key is required (error: missing key).
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_double(const std::string& key) const;
  double get_double(const std::string& key, double fallback) const;
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  bool get_bool(const std::string& key) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::vector<int64_t> get_int_list(const std::string& key) const;
  std::vector<int64_t> get_int_list(const std::string& key, const std::vector<int64_t>& fallback) const;
  std::vector<double> get_double_list(const std::string& key) const;
  std::vector<double> get_double_list(const std::string& key, const std::vector<double>& fallback) const;
  std::vector<std::string> get_string_list(const std::string& key) const;
  std::vector<std::string> get_string_list(const std::string& key, const std::vector<std::string>& fallback) const;
  // A string that must be one of `choices` (error lists them).
  std::string get_choice(const std::string& key, const std::string& fallback,
                         const std::vector<std::string>& choices) const;

  // Throws naming every key that was set but never read, with a suggestion where one is close.
  void check_all_used() const;

  // The effective configuration: values set (file order) then defaults that were read.
  std::string to_toml() const;
  nlohmann::json to_json() const;

 private:
  struct Entry {
    std::string key;
    TomlValue value;
    std::string origin;  // "FILE:LINE" or "--set"
  };
  const Entry* find(const std::string& key) const;  // marks the key as used
  const Entry& require(const std::string& key, const char* type) const;
  void note_default(const std::string& key, TomlValue value) const;
  [[noreturn]] void type_error(const Entry& e, const char* expected) const;
  int64_t as_int(const Entry& e, const TomlValue& v) const;
  double as_double(const Entry& e, const TomlValue& v) const;

  std::string source_;
  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;
  mutable std::set<std::string> used_;
  mutable std::set<std::string> asked_;  // keys passed to has(): known, not necessarily used
  mutable std::vector<std::pair<std::string, TomlValue>> defaults_;  // keys read but not set
};

// Value checks a job runs after Config::check_all_used(), so that a misspelt key is reported
// as such first. Errors name the key: "config key `train.steps` must be positive, got 0".
void check_positive(int64_t value, const std::string& key);
void check_not_negative(double value, const std::string& key);
void check_choice(const std::string& value, const std::vector<std::string>& choices, const std::string& key);

}  // namespace tessera::train
