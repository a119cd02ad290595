// Config: typed getters with defaults, --set overrides, unknown-key and type errors.
#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "framework/core/error.h"
#include "framework/train/config.h"

namespace tessera::train {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

const char* kConfig =
    "job = \"classifier\"\n"
    "[optim]\n"
    "name = \"adamw\"\n"
    "lr = 1e-3\n"
    "warmup = 100\n"
    "betas = [0.9, 0.999]\n"
    "[model]\n"
    "hidden = [256, 128]\n"
    "dropout = false\n";

TEST(ConfigTest, TypedGettersReadValues) {
  Config c = Config::from_string(kConfig, "cfg.toml");
  EXPECT_EQ(c.get_string("job"), "classifier");
  EXPECT_EQ(c.get_double("optim.lr"), 1e-3);
  EXPECT_EQ(c.get_int("optim.warmup"), 100);
  EXPECT_EQ(c.get_double_list("optim.betas"), (std::vector<double>{0.9, 0.999}));
  EXPECT_EQ(c.get_int_list("model.hidden"), (std::vector<int64_t>{256, 128}));
  EXPECT_FALSE(c.get_bool("model.dropout"));
  EXPECT_EQ(c.get_choice("optim.name", "sgd", {"adamw", "sgd"}), "adamw");
}

TEST(ConfigTest, DefaultsApplyToMissingKeys) {
  Config c = Config::from_string("", "cfg.toml");
  EXPECT_EQ(c.get_int("train.steps", 500), 500);
  EXPECT_EQ(c.get_double("optim.lr", 0.1), 0.1);
  EXPECT_EQ(c.get_string("device", "cpu"), "cpu");
  EXPECT_TRUE(c.get_bool("flag", true));
  EXPECT_EQ(c.get_int_list("dims", {1, 2}), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(c.get_string_list("names", {"a"}), (std::vector<std::string>{"a"}));
}

TEST(ConfigTest, IntegersReadAsFloatsAndIntegralFloatsAsIntegers) {
  Config c = Config::from_string("a = 3\nb = 1e4\nc = 2.5\n", "cfg.toml");
  EXPECT_EQ(c.get_double("a"), 3.0);
  EXPECT_EQ(c.get_int("b"), 10000);
  EXPECT_NE(error_of([&] { c.get_int("c"); }).find("must be an integer"), std::string::npos);
}

TEST(ConfigTest, MissingRequiredKeyNamesKeyAndFile) {
  Config c = Config::from_string("", "cfg.toml");
  EXPECT_EQ(error_of([&] { c.get_string("job"); }),
            "missing config key `job` (a string) in cfg.toml; set it in the file or with --set job=...");
}

TEST(ConfigTest, TypeMismatchNamesKeyOriginAndExpectedType) {
  Config c = Config::from_string("[optim]\nlr = \"fast\"\n", "cfg.toml");
  EXPECT_EQ(error_of([&] { c.get_double("optim.lr", 0.1); }),
            "config key `optim.lr` (cfg.toml:2) must be a number, got string \"fast\"");
  Config d = Config::from_string("flag = 1\nlist = [1, \"x\"]\n", "cfg.toml");
  EXPECT_NE(error_of([&] { d.get_bool("flag"); }).find("must be a boolean"), std::string::npos);
  EXPECT_NE(error_of([&] { d.get_int_list("list"); }).find("must be an array of integers"), std::string::npos);
  EXPECT_NE(error_of([&] { d.get_string("flag"); }).find("must be a string, got integer 1"), std::string::npos);
}

TEST(ConfigTest, ChoiceOutsideTheListIsAnError) {
  Config c = Config::from_string("[optim]\nname = \"adamx\"\n", "cfg.toml");
  EXPECT_EQ(error_of([&] { c.get_choice("optim.name", "adamw", {"adamw", "sgd"}); }),
            "config key `optim.name` (cfg.toml:2) is \"adamx\"; expected one of: adamw, sgd");
}

TEST(ConfigTest, OverridesParseTomlValuesOrBareStrings) {
  Config c = Config::from_string(kConfig, "cfg.toml");
  c.set_override("optim.lr=0.5");
  c.set_override("job=gan");
  c.set_override("model.hidden=[64]");
  c.set_override("train.steps = 20");
  c.set_override("data.dir=/tmp/some dir");
  EXPECT_EQ(c.get_double("optim.lr"), 0.5);
  EXPECT_EQ(c.get_string("job"), "gan");
  EXPECT_EQ(c.get_int_list("model.hidden"), (std::vector<int64_t>{64}));
  EXPECT_EQ(c.get_int("train.steps"), 20);
  EXPECT_EQ(c.get_string("data.dir"), "/tmp/some dir");
}

TEST(ConfigTest, MalformedOverridesAreErrors) {
  Config c = Config::from_string(kConfig, "cfg.toml");
  EXPECT_NE(error_of([&] { c.set_override("optim.lr"); }).find("expected key=value"), std::string::npos);
  EXPECT_NE(error_of([&] { c.set_override("=3"); }).find("expected key=value"), std::string::npos);
  EXPECT_NE(error_of([&] { c.set_override("optim..lr=3"); }).find("not a dotted key"), std::string::npos);
  EXPECT_NE(error_of([&] { c.set_override("optim=3"); }).find("`optim` is a table"), std::string::npos);
  EXPECT_NE(error_of([&] { c.set_override("job.x=3"); }).find("`job` is a value"), std::string::npos);
}

TEST(ConfigTest, UnknownKeyIsAnErrorWithSuggestion) {
  Config c = Config::from_string("[optim]\nlrr = 0.1\n", "examples/x.toml");
  c.get_double("optim.lr", 1e-3);
  EXPECT_EQ(error_of([&] { c.check_all_used(); }),
            "unknown config key `optim.lrr` in examples/x.toml:2 (did you mean `optim.lr`?)");
}

TEST(ConfigTest, UnknownKeysAreAllListedAndOverridesNamed) {
  Config c = Config::from_string("a = 1\nzzzzzz = 2\n", "x.toml");
  c.set_override("qqqqqqqq=3");
  c.get_int("a");
  const std::string msg = error_of([&] { c.check_all_used(); });
  EXPECT_NE(msg.find("unknown config key `zzzzzz` in x.toml:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown config key `qqqqqqqq` in --set"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("did you mean"), std::string::npos) << msg;
}

TEST(ConfigTest, SuggestionFindsKeyInAnotherTable) {
  Config c = Config::from_string("lr = 0.1\n", "x.toml");
  c.get_double("optim.lr", 1e-3);
  EXPECT_NE(error_of([&] { c.check_all_used(); }).find("did you mean `optim.lr`?"), std::string::npos);
}

TEST(ConfigTest, KeysAskedWithHasAreSuggested) {
  Config c = Config::from_string("[train]\nstep = 100\n", "x.toml");
  EXPECT_FALSE(c.has("train.steps"));
  EXPECT_EQ(error_of([&] { c.check_all_used(); }),
            "unknown config key `train.step` in x.toml:2 (did you mean `train.steps`?)");
}

TEST(ConfigTest, AllKeysReadPassesTheCheck) {
  Config c = Config::from_string(kConfig, "cfg.toml");
  for (const auto& key : c.keys()) c.has(key);
  EXPECT_THROW(c.check_all_used(), Error);  // has() does not mark keys as used
  c.get_string("job");
  c.get_string("optim.name");
  c.get_double("optim.lr");
  c.get_int("optim.warmup");
  c.get_double_list("optim.betas");
  c.get_int_list("model.hidden");
  c.get_bool("model.dropout");
  EXPECT_NO_THROW(c.check_all_used());
}

TEST(ConfigTest, MissingFileNamesThePath) {
  EXPECT_NE(error_of([] { Config::from_file("/nonexistent/cfg.toml"); }).find("/nonexistent/cfg.toml"),
            std::string::npos);
}

TEST(ConfigTest, EffectiveConfigIncludesDefaultsAndReparses) {
  Config c = Config::from_string(kConfig, "cfg.toml");
  c.set_override("optim.lr=0.25");
  c.get_int("train.steps", 300);
  const std::string toml = c.to_toml();
  Config again = Config::from_string(toml, "snapshot");
  EXPECT_EQ(again.get_double("optim.lr"), 0.25);
  EXPECT_EQ(again.get_int("train.steps"), 300);
  EXPECT_EQ(again.get_int_list("model.hidden"), (std::vector<int64_t>{256, 128}));
  const auto json = c.to_json();
  EXPECT_EQ(json["optim.lr"], 0.25);
  EXPECT_EQ(json["train.steps"], 300);
  EXPECT_EQ(json["job"], "classifier");
}

}  // namespace
}  // namespace tessera::train
