// Config: typed access to flattened TOML settings, with use tracking for unknown-key errors.
#include "framework/train/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "framework/core/error.h"

namespace tessera::train {
namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string last_part(const std::string& key) {
  const size_t dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

// The known key nearest to `key`: a small edit distance, or the same last part in another table.
std::string suggestion(const std::string& key, const std::vector<std::string>& known) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, key.size() / 4) + 1;
  for (const auto& k : known) {
    const size_t d = edit_distance(key, k);
    if (d < best_distance) {
      best = k;
      best_distance = d;
    }
  }
  if (!best.empty()) return best;
  for (const auto& k : known)
    if (last_part(k) == last_part(key)) return k;
  return "";
}

nlohmann::json value_to_json(const TomlValue& v) {
  switch (v.kind) {
    case TomlValue::Kind::string: return v.string;
    case TomlValue::Kind::integer: return v.integer;
    case TomlValue::Kind::floating: return v.floating;
    case TomlValue::Kind::boolean: return v.boolean;
    case TomlValue::Kind::array: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : v.array) out.push_back(value_to_json(item));
      return out;
    }
  }
  return nullptr;
}

}  // namespace

Config Config::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TESSERA_CHECK(in.good(), "cannot read config file ", path, ": no such file or not readable");
  std::ostringstream text;
  text << in.rdbuf();
  return from_string(text.str(), path);
}

Config Config::from_string(std::string_view text, const std::string& source) {
  Config config;
  config.source_ = source;
  for (auto& entry : parse_toml(text, source))
    config.set(entry.key, std::move(entry.value), detail::cat(source, ":", entry.line));
  return config;
}

void Config::set_override(const std::string& assignment) {
  const size_t eq = assignment.find('=');
  TESSERA_CHECK(eq != std::string::npos && eq > 0, "--set ", assignment, ": expected key=value");
  std::string key = assignment.substr(0, eq);
  key.erase(key.find_last_not_of(" \t") + 1);
  key.erase(0, key.find_first_not_of(" \t"));
  TESSERA_CHECK(!key.empty() && key.front() != '.' && key.back() != '.' && key.find("..") == std::string::npos,
                "--set ", assignment, ": `", key, "` is not a dotted key like optim.lr");
  const std::string text = assignment.substr(eq + 1);
  TomlValue value;
  try {
    value = parse_toml_value(text, "--set " + key);
  } catch (const Error&) {
    value = TomlValue::of_string(text);
  }
  set(key, std::move(value), "--set");
}

void Config::set(const std::string& key, TomlValue value, const std::string& origin) {
  // A key cannot be both a value and a table: `optim=1` next to `optim.lr`.
  for (const auto& e : entries_) {
    if (e.key.size() > key.size() && e.key.compare(0, key.size(), key) == 0 && e.key[key.size()] == '.')
      detail::throw_error(detail::cat(origin, ": `", key, "` is a table (", e.key, " is set at ", e.origin,
                                      "), not a value"));
    if (key.size() > e.key.size() && key.compare(0, e.key.size(), e.key) == 0 && key[e.key.size()] == '.')
      detail::throw_error(detail::cat(origin, ": `", e.key, "` is a value (set at ", e.origin,
                                      "), so `", key, "` cannot be set"));
  }
  if (auto it = index_.find(key); it != index_.end()) {
    entries_[it->second].value = std::move(value);
    entries_[it->second].origin = origin;
    return;
  }
  index_[key] = entries_.size();
  entries_.push_back({key, std::move(value), origin});
}

std::vector<std::string> Config::keys() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.key);
  return out;
}

bool Config::has(const std::string& key) const {
  asked_.insert(key);
  return index_.count(key) > 0;
}

const Config::Entry* Config::find(const std::string& key) const {
  used_.insert(key);
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

const Config::Entry& Config::require(const std::string& key, const char* type) const {
  const Entry* e = find(key);
  TESSERA_CHECK(e != nullptr, "missing config key `", key, "` (", type, ")",
                source_.empty() ? "" : " in ", source_, "; set it in the file or with --set ", key, "=...");
  return *e;
}

void Config::note_default(const std::string& key, TomlValue value) const {
  for (const auto& [k, v] : defaults_)
    if (k == key) return;
  defaults_.emplace_back(key, std::move(value));
}

void Config::type_error(const Entry& e, const char* expected) const {
  detail::throw_error(detail::cat("config key `", e.key, "` (", e.origin, ") must be ", expected, ", got ",
                                  e.value.type_name(), " ", e.value.to_toml()));
}

int64_t Config::as_int(const Entry& e, const TomlValue& v) const {
  if (v.kind == TomlValue::Kind::integer) return v.integer;
  if (v.kind == TomlValue::Kind::floating && std::isfinite(v.floating) && v.floating == std::floor(v.floating) &&
      std::abs(v.floating) < 9.0e18)
    return static_cast<int64_t>(v.floating);
  type_error(e, "an integer");
}

double Config::as_double(const Entry& e, const TomlValue& v) const {
  if (v.kind == TomlValue::Kind::floating) return v.floating;
  if (v.kind == TomlValue::Kind::integer) return static_cast<double>(v.integer);
  type_error(e, "a number");
}

int64_t Config::get_int(const std::string& key) const {
  const Entry& e = require(key, "an integer");
  return as_int(e, e.value);
}
int64_t Config::get_int(const std::string& key, int64_t fallback) const {
  const Entry* e = find(key);
  if (!e) note_default(key, TomlValue::of_integer(fallback));
  return e ? as_int(*e, e->value) : fallback;
}

double Config::get_double(const std::string& key) const {
  const Entry& e = require(key, "a number");
  return as_double(e, e.value);
}
double Config::get_double(const std::string& key, double fallback) const {
  const Entry* e = find(key);
  if (!e) note_default(key, TomlValue::of_floating(fallback));
  return e ? as_double(*e, e->value) : fallback;
}

std::string Config::get_string(const std::string& key) const {
  const Entry& e = require(key, "a string");
  if (e.value.kind != TomlValue::Kind::string) type_error(e, "a string");
  return e.value.string;
}
std::string Config::get_string(const std::string& key, const std::string& fallback) const {
  if (!has(key)) {
    find(key);
    note_default(key, TomlValue::of_string(fallback));
    return fallback;
  }
  return get_string(key);
}

bool Config::get_bool(const std::string& key) const {
  const Entry& e = require(key, "a boolean");
  if (e.value.kind != TomlValue::Kind::boolean) type_error(e, "a boolean (true or false)");
  return e.value.boolean;
}
bool Config::get_bool(const std::string& key, bool fallback) const {
  if (!has(key)) {
    find(key);
    note_default(key, TomlValue::of_boolean(fallback));
    return fallback;
  }
  return get_bool(key);
}

std::vector<int64_t> Config::get_int_list(const std::string& key) const {
  const Entry& e = require(key, "an array of integers");
  if (e.value.kind != TomlValue::Kind::array) type_error(e, "an array of integers");
  std::vector<int64_t> out;
  for (const auto& item : e.value.array) {
    if (item.kind != TomlValue::Kind::integer && item.kind != TomlValue::Kind::floating)
      type_error(e, "an array of integers");
    out.push_back(as_int(e, item));
  }
  return out;
}
std::vector<int64_t> Config::get_int_list(const std::string& key, const std::vector<int64_t>& fallback) const {
  if (!has(key)) {
    find(key);
    std::vector<TomlValue> items;
    for (int64_t v : fallback) items.push_back(TomlValue::of_integer(v));
    note_default(key, TomlValue::of_array(std::move(items)));
    return fallback;
  }
  return get_int_list(key);
}

std::vector<double> Config::get_double_list(const std::string& key) const {
  const Entry& e = require(key, "an array of numbers");
  if (e.value.kind != TomlValue::Kind::array) type_error(e, "an array of numbers");
  std::vector<double> out;
  for (const auto& item : e.value.array) {
    if (item.kind != TomlValue::Kind::integer && item.kind != TomlValue::Kind::floating)
      type_error(e, "an array of numbers");
    out.push_back(as_double(e, item));
  }
  return out;
}
std::vector<double> Config::get_double_list(const std::string& key, const std::vector<double>& fallback) const {
  if (!has(key)) {
    find(key);
    std::vector<TomlValue> items;
    for (double v : fallback) items.push_back(TomlValue::of_floating(v));
    note_default(key, TomlValue::of_array(std::move(items)));
    return fallback;
  }
  return get_double_list(key);
}

std::vector<std::string> Config::get_string_list(const std::string& key) const {
  const Entry& e = require(key, "an array of strings");
  if (e.value.kind != TomlValue::Kind::array) type_error(e, "an array of strings");
  std::vector<std::string> out;
  for (const auto& item : e.value.array) {
    if (item.kind != TomlValue::Kind::string) type_error(e, "an array of strings");
    out.push_back(item.string);
  }
  return out;
}
std::vector<std::string> Config::get_string_list(const std::string& key,
                                                 const std::vector<std::string>& fallback) const {
  if (!has(key)) {
    find(key);
    std::vector<TomlValue> items;
    for (const auto& v : fallback) items.push_back(TomlValue::of_string(v));
    note_default(key, TomlValue::of_array(std::move(items)));
    return fallback;
  }
  return get_string_list(key);
}

std::string Config::get_choice(const std::string& key, const std::string& fallback,
                               const std::vector<std::string>& choices) const {
  const std::string value = get_string(key, fallback);
  if (std::find(choices.begin(), choices.end(), value) != choices.end()) return value;
  std::string list;
  for (size_t i = 0; i < choices.size(); ++i) list += (i ? ", " : "") + choices[i];
  const Entry* e = find(key);
  detail::throw_error(detail::cat("config key `", key, "` (", e ? e->origin : std::string("default"), ") is \"",
                                  value, "\"; expected one of: ", list));
}

void Config::check_all_used() const {
  std::set<std::string> known_set = used_;
  known_set.insert(asked_.begin(), asked_.end());
  const std::vector<std::string> known(known_set.begin(), known_set.end());
  std::string message;
  size_t unknown = 0;
  for (const auto& e : entries_) {
    if (used_.count(e.key)) continue;
    ++unknown;
    message += detail::cat(message.empty() ? "" : "\n", "unknown config key `", e.key, "` in ", e.origin);
    const std::string near = suggestion(e.key, known);
    if (!near.empty()) message += " (did you mean `" + near + "`?)";
  }
  TESSERA_CHECK(unknown == 0, message);
}

std::string Config::to_toml() const {
  std::string out;
  if (!source_.empty()) out += "# effective configuration (source: " + source_ + ")\n";
  for (const auto& e : entries_) out += e.key + " = " + e.value.to_toml() + "\n";
  if (!defaults_.empty()) {
    out += "# defaults\n";
    for (const auto& [key, value] : defaults_)
      if (!has(key)) out += key + " = " + value.to_toml() + "\n";
  }
  return out;
}

nlohmann::json Config::to_json() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& e : entries_) out[e.key] = value_to_json(e.value);
  for (const auto& [key, value] : defaults_)
    if (!has(key)) out[key] = value_to_json(value);
  return out;
}

void check_positive(int64_t value, const std::string& key) {
  TESSERA_CHECK(value > 0, "config key `", key, "` must be positive, got ", value);
}

void check_not_negative(double value, const std::string& key) {
  TESSERA_CHECK(value >= 0, "config key `", key, "` must not be negative, got ", value);
}

void check_choice(const std::string& value, const std::vector<std::string>& choices, const std::string& key) {
  if (std::find(choices.begin(), choices.end(), value) != choices.end()) return;
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
  detail::throw_error(detail::cat("config key `", key, "` is \"", value, "\"; expected one of: ", list));
}

}  // namespace tessera::train
