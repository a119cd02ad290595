// Byte-level BPE tokenizer: chunking, exact round trips, merge order, tok.json errors.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <random>

#include "framework/core/error.h"
#include "framework/data/tokenizer.h"

namespace tessera::data {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("tessera_tokenizer_test_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string expect_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a tessera::Error";
  return "";
}

TEST(TokenizerTest, PretokenizeSplitsIntoGpt2LikeChunks) {
  const std::vector<std::string_view> chunks = pretokenize("Hello, world 1961's  x\n\n\tend!?");
  const std::vector<std::string_view> expected{"Hello", ",", " world", " 1961", "'", "s", " ", " x", "\n\n\t", "end",
                                               "!?"};
  EXPECT_EQ(chunks, expected);
  // A run of spaces before a word leaves its last space to the word.
  EXPECT_EQ(pretokenize("a   b"), (std::vector<std::string_view>{"a", "  ", " b"}));
  // UTF-8 letters stay in the word; NUL is an "other" byte.
  EXPECT_EQ(pretokenize(std::string_view("caf\xc3\xa9\0x", 7)),
            (std::vector<std::string_view>{"caf\xc3\xa9", std::string_view("\0", 1), "x"}));
}

TEST(TokenizerTest, MergesAreLearnedInFrequencyOrder) {
  // Chunks: "aaab" x1, " aaab" x2, " ab" x2, so pair counts are (a,a)=6, (a,b)=5, (' ',a)=4.
  // 0: (a,a)->256, leaving (a,b)=5, (256,a)=3, (' ',256)=2, (' ',a)=2.
  // 1: (a,b)->257, leaving (256,257)=3, (' ',256)=2, (' ',257)=2.
  // 2: (256,257)->258 ("aaab"), leaving (' ',258)=2, (' ',257)=2.
  // 3: a tie at 2 goes to the smaller pair (' ',257)->259 (" ab").  4: (' ',258)->260 (" aaab").
  TokenizerTrainOptions options;
  options.vocab_size = 1000;
  const Tokenizer tok = Tokenizer::train("aaab aaab aaab ab ab", options);
  const std::vector<Tokenizer::Merge> expected{{'a', 'a'}, {'a', 'b'}, {256, 257}, {' ', 257}, {' ', 258}};
  EXPECT_EQ(tok.merges(), expected);
  EXPECT_EQ(tok.vocab_size(), 256 + 5 + 1);
  EXPECT_EQ(tok.special_id(kEndOfText), 261u);
  EXPECT_EQ(tok.token_bytes(260), " aaab");
  EXPECT_EQ(tok.encode("aaab aaab ab"), (std::vector<uint32_t>{258, 260, 259}));
}

TEST(TokenizerTest, TrainingStopsAtTheRequestedVocabSize) {
  TokenizerTrainOptions options;
  options.vocab_size = 256 + 2 + 1;
  const Tokenizer tok = Tokenizer::train("aaab aaab aaab ab ab", options);
  EXPECT_EQ(tok.num_merges(), 2);
  EXPECT_EQ(tok.vocab_size(), 259);
}

TEST(TokenizerTest, RandomBytesRoundTripExactly) {
  std::string corpus;
  for (int i = 0; i < 200; ++i) corpus += "the quick brown fox jumps over the lazy dog 1234 times. ";
  TokenizerTrainOptions options;
  options.vocab_size = 400;
  const Tokenizer tok = Tokenizer::train(corpus, options);
  ASSERT_GT(tok.num_merges(), 20);
  std::mt19937 rng(123);
  for (int trial = 0; trial < 50; ++trial) {
    std::string bytes(rng() % 3000, '\0');
    // Mix random bytes (invalid UTF-8, NULs) with runs of training text so merges fire.
    for (size_t i = 0; i < bytes.size(); ++i) {
      bytes[i] = (rng() % 4 == 0) ? corpus[i % corpus.size()] : static_cast<char>(rng() & 0xff);
    }
    if (!bytes.empty()) bytes[0] = '\0';
    const std::vector<uint32_t> ids = tok.encode(bytes);
    for (uint32_t id : ids) ASSERT_LT(id, tok.vocab_size());
    ASSERT_EQ(tok.decode(ids), bytes) << "trial " << trial;
  }
  EXPECT_EQ(tok.decode(tok.encode(corpus)), corpus);
  EXPECT_LT(tok.encode(corpus).size(), corpus.size() / 3);  // the merges compress the text they came from
}

TEST(TokenizerTest, SpecialTokenTextIsEncodedAsPlainBytes) {
  TokenizerTrainOptions options;
  options.vocab_size = 300;
  const Tokenizer tok = Tokenizer::train("hello hello hello", options);
  const uint32_t eot = tok.special_id(kEndOfText);
  const std::vector<uint32_t> ids = tok.encode(kEndOfText);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), eot), 0);
  EXPECT_EQ(tok.decode(std::vector<uint32_t>{eot}), kEndOfText);
  EXPECT_NE(expect_error([&] { tok.decode(std::vector<uint32_t>{static_cast<uint32_t>(tok.vocab_size())}); })
                .find(">= vocab size"),
            std::string::npos);
}

TEST(TokenizerTest, SaveLoadRoundTrip) {
  const fs::path dir = temp_dir("save");
  TokenizerTrainOptions options;
  options.vocab_size = 350;
  options.special_tokens = {std::string(kEndOfText), "<|pad|>"};
  const Tokenizer tok = Tokenizer::train("lorem ipsum dolor sit amet, lorem ipsum dolor 2024 sit amet", options);
  tok.save((dir / "tok.json").string());
  const Tokenizer back = Tokenizer::load((dir / "tok.json").string());
  EXPECT_EQ(back.merges(), tok.merges());
  EXPECT_EQ(back.special_tokens(), tok.special_tokens());
  EXPECT_EQ(back.vocab_size(), tok.vocab_size());
  EXPECT_EQ(back.special_id("<|pad|>"), tok.special_id("<|pad|>"));
  EXPECT_FALSE(fs::exists(dir / "tok.json.tmp"));
  fs::remove_all(dir);
}

TEST(TokenizerTest, CorruptOrMismatchedFileIsAnErrorNamingIt) {
  const fs::path dir = temp_dir("corrupt");
  TokenizerTrainOptions options;
  options.vocab_size = 300;
  const Tokenizer tok = Tokenizer::train("abcabcabc xyzxyz", options);
  const fs::path good = dir / "tok.json";
  tok.save(good.string());
  std::ifstream in(good);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  auto error_for = [&](const std::string& body) {
    const fs::path bad = dir / "bad.json";
    write_text(bad, body);
    const std::string message = expect_error([&] { Tokenizer::load(bad.string()); });
    EXPECT_NE(message.find(bad.string()), std::string::npos) << message;
    return message;
  };
  EXPECT_NE(error_for(text.substr(0, text.size() / 2)).find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_for("{\"format\": \"something-else\"}").find("format"), std::string::npos);
  EXPECT_NE(error_for("{\"format\": \"tessera-bpe\", \"version\": 1}").find("missing field \"pretokenizer\""),
            std::string::npos);

  std::string wrong_vocab = text;
  const std::string field = "\"vocab_size\": " + std::to_string(tok.vocab_size());
  wrong_vocab.replace(wrong_vocab.find(field), field.size(), "\"vocab_size\": 8192");
  EXPECT_NE(error_for(wrong_vocab).find("vocab_size 8192 does not match"), std::string::npos);

  std::string future_id = text;
  const size_t merges = future_id.find("\"merges\": [");
  const size_t first = future_id.find('[', merges + 11);
  future_id.replace(first, future_id.find(']', first) - first + 1, "[99999, 97]");
  EXPECT_NE(error_for(future_id).find("not defined before it"), std::string::npos);

  std::string bad_version = text;
  bad_version.replace(bad_version.find("\"version\": 1"), 12, "\"version\": 7");
  EXPECT_NE(error_for(bad_version).find("unsupported version 7"), std::string::npos);

  EXPECT_NE(expect_error([&] { Tokenizer::load((dir / "missing.json").string()); }).find("missing.json"),
            std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tessera::data
