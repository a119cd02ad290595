// The TOML parser: each supported construct, and errors that say FILE:LINE:COLUMN and what was
// expected.
#include <gtest/gtest.h>

#include <functional>
#include <map>

#include <cmath>

#include "framework/core/error.h"
#include "framework/train/toml.h"

namespace tessera::train {
namespace {

std::map<std::string, TomlValue> parse(const std::string& text) {
  std::map<std::string, TomlValue> out;
  for (auto& e : parse_toml(text, "test.toml")) out[e.key] = e.value;
  return out;
}

std::string error_of(const std::string& text) {
  try {
    parse_toml(text, "test.toml");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TomlTest, TablesAndDottedKeysFlattenToFullKeys) {
  auto v = parse(
      "job = \"classifier\"\n"
      "[optim]\n"
      "lr = 0.001\n"
      "betas.first = 0.9\n"
      "[model.mlp]\n"
      "hidden = 256\n"
      "\"quoted key\" = 1\n"
      "'lit' = 2\n");
  EXPECT_EQ(v.at("job").string, "classifier");
  EXPECT_EQ(v.at("optim.lr").floating, 0.001);
  EXPECT_EQ(v.at("optim.betas.first").floating, 0.9);
  EXPECT_EQ(v.at("model.mlp.hidden").integer, 256);
  EXPECT_EQ(v.at("model.mlp.quoted key").integer, 1);
  EXPECT_EQ(v.at("model.mlp.lit").integer, 2);
}

TEST(TomlTest, EntriesKeepFileOrderAndLines) {
  auto entries = parse_toml("b = 1\n\n# comment\na = 2\n", "f.toml");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].key, "b");
  EXPECT_EQ(entries[0].line, 1);
  EXPECT_EQ(entries[1].key, "a");
  EXPECT_EQ(entries[1].line, 4);
}

TEST(TomlTest, BasicStringEscapes) {
  auto v = parse(R"(s = "tab\tquote\"back\\nl\nu\u00e9U\U0001F600")");
  EXPECT_EQ(v.at("s").string, "tab\tquote\"back\\nl\nu\xc3\xa9U\xf0\x9f\x98\x80");
}

TEST(TomlTest, LiteralStringsKeepBackslashes) {
  auto v = parse(R"(p = 'C:\path\n')");
  EXPECT_EQ(v.at("p").string, "C:\\path\\n");
}

TEST(TomlTest, MultiLineStrings) {
  auto v = parse(
      "a = \"\"\"\nline1\nline2\"\"\"\n"
      "b = \"\"\"one \\\n    two\"\"\"\n"
      "c = '''\nraw \\n\n'''\n"
      "d = \"\"\"x\"\"\"\"\n");
  EXPECT_EQ(v.at("a").string, "line1\nline2");
  EXPECT_EQ(v.at("b").string, "one two");
  EXPECT_EQ(v.at("c").string, "raw \\n\n");
  EXPECT_EQ(v.at("d").string, "x\"");
}

TEST(TomlTest, Integers) {
  auto v = parse("a = 1_000_000\nb = -17\nc = +3\nd = 0\ne = 0xff\nf = 0o17\ng = 0b101\n"
                 "h = -9223372036854775808\n");
  EXPECT_EQ(v.at("a").integer, 1000000);
  EXPECT_EQ(v.at("b").integer, -17);
  EXPECT_EQ(v.at("c").integer, 3);
  EXPECT_EQ(v.at("d").integer, 0);
  EXPECT_EQ(v.at("e").integer, 255);
  EXPECT_EQ(v.at("f").integer, 15);
  EXPECT_EQ(v.at("g").integer, 5);
  EXPECT_EQ(v.at("h").integer, INT64_MIN);
  EXPECT_EQ(v.at("a").kind, TomlValue::Kind::integer);
}

TEST(TomlTest, Floats) {
  auto v = parse("a = 3.5\nb = -1e-3\nc = 6.02E+23\nd = 1_0.2_5\ne = inf\nf = -inf\ng = nan\nh = +0.5\n");
  EXPECT_EQ(v.at("a").floating, 3.5);
  EXPECT_EQ(v.at("b").floating, -1e-3);
  EXPECT_EQ(v.at("c").floating, 6.02e23);
  EXPECT_EQ(v.at("d").floating, 10.25);
  EXPECT_TRUE(std::isinf(v.at("e").floating) && v.at("e").floating > 0);
  EXPECT_TRUE(std::isinf(v.at("f").floating) && v.at("f").floating < 0);
  EXPECT_TRUE(std::isnan(v.at("g").floating));
  EXPECT_EQ(v.at("h").floating, 0.5);
  EXPECT_EQ(v.at("a").kind, TomlValue::Kind::floating);
}

TEST(TomlTest, BooleansAndComments) {
  auto v = parse("a = true # yes\nb = false\n# c = 1\n");
  EXPECT_TRUE(v.at("a").boolean);
  EXPECT_FALSE(v.at("b").boolean);
  EXPECT_EQ(v.count("c"), 0u);
}

TEST(TomlTest, MultiLineArraysWithCommentsAndTrailingComma) {
  auto v = parse("dims = [\n  784, # input\n  256,\n\n  10,\n]\nnested = [[1, 2], [\"a\"]]\nempty = []\n");
  const auto& dims = v.at("dims").array;
  ASSERT_EQ(dims.size(), 3u);
  EXPECT_EQ(dims[0].integer, 784);
  EXPECT_EQ(dims[2].integer, 10);
  EXPECT_EQ(v.at("nested").array[1].array[0].string, "a");
  EXPECT_TRUE(v.at("empty").array.empty());
}

TEST(TomlTest, InlineTablesFlatten) {
  auto v = parse("optim = { name = \"adamw\", lr = 1e-3 }\n");
  EXPECT_EQ(v.at("optim.name").string, "adamw");
  EXPECT_EQ(v.at("optim.lr").floating, 1e-3);
}

TEST(TomlTest, CrlfLineEndings) {
  auto v = parse("a = 1\r\n[t]\r\nb = 2\r\n");
  EXPECT_EQ(v.at("t.b").integer, 2);
}

TEST(TomlTest, ErrorsNameFileLineAndExpectation) {
  EXPECT_EQ(error_of("a = 1\nb 2\n"), "test.toml:2:3: expected `=` after the key `b`, found '2'");
  EXPECT_EQ(error_of("a = \n"), "test.toml:1:5: expected a value (string, number, boolean or array) for `a`, "
                                "found end of line");
  EXPECT_NE(error_of("a = \"open\n").find("test.toml:1:"), std::string::npos);
  EXPECT_NE(error_of("a = \"open\n").find("unterminated string"), std::string::npos);
  EXPECT_NE(error_of("[t\n").find("expected `]`"), std::string::npos);
  EXPECT_NE(error_of("a = [1, 2\n").find("unterminated array"), std::string::npos);
  EXPECT_NE(error_of("a = [1 2]\n").find("expected `,` or `]`"), std::string::npos);
  EXPECT_NE(error_of("a = 1 2\n").find("expected the end of the line"), std::string::npos);
}

TEST(TomlTest, BadNumbersAreErrors) {
  EXPECT_NE(error_of("a = 1__0\n").find("`_` must stand between two digits"), std::string::npos);
  EXPECT_NE(error_of("a = _1\n").find("bad value"), std::string::npos);
  EXPECT_NE(error_of("a = 012\n").find("leading zeros"), std::string::npos);
  EXPECT_NE(error_of("a = 1.\n").find("after the decimal point"), std::string::npos);
  EXPECT_NE(error_of("a = 1e\n").find("exponent"), std::string::npos);
  EXPECT_NE(error_of("a = 99999999999999999999\n").find("out of the 64-bit range"), std::string::npos);
  EXPECT_NE(error_of("a = yes\n").find("quoted string"), std::string::npos);
  EXPECT_NE(error_of("a = 1979-05-27\n").find("dates and times are not supported"), std::string::npos);
}

TEST(TomlTest, RedefinitionsAreErrors) {
  EXPECT_NE(error_of("a = 1\na = 2\n").find("key `a` is defined twice (first at line 1)"), std::string::npos);
  EXPECT_NE(error_of("[t]\nx=1\n[t]\n").find("table [t] is defined twice"), std::string::npos);
  EXPECT_NE(error_of("a = 1\n[a]\n").find("`a` is a value"), std::string::npos);
  EXPECT_NE(error_of("a = 1\na.b = 2\n").find("`a` is a value"), std::string::npos);
  EXPECT_NE(error_of("[[runs]]\n").find("arrays of tables"), std::string::npos);
}

TEST(TomlTest, BadEscapesAreErrors) {
  EXPECT_NE(error_of(R"(a = "\q")").find("unknown escape"), std::string::npos);
  EXPECT_NE(error_of(R"(a = "\u12")").find("hex digits"), std::string::npos);
}

TEST(TomlTest, SingleValueParsesOrThrows) {
  EXPECT_EQ(parse_toml_value("0.5", "--set").floating, 0.5);
  EXPECT_EQ(parse_toml_value("[1, 2]", "--set").array.size(), 2u);
  EXPECT_EQ(parse_toml_value("\"x y\"", "--set").string, "x y");
  EXPECT_THROW(parse_toml_value("classifier", "--set"), Error);
  EXPECT_THROW(parse_toml_value("1 2", "--set"), Error);
}

TEST(TomlTest, ValuesRoundTripThroughToToml) {
  const std::string text =
      "a = 0.1\nb = -3\nc = \"q\\\"\\n\"\nd = [1.5, true, \"x\"]\ne = 1e300\nf = 2.0\ng = -inf\n";
  auto first = parse_toml(text, "t");
  std::string written;
  for (const auto& e : first) written += e.key + " = " + e.value.to_toml() + "\n";
  auto second = parse_toml(written, "t2");
  ASSERT_EQ(first.size(), second.size());
  for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(first[i].value, second[i].value) << first[i].key;
}

}  // namespace
}  // namespace tessera::train
