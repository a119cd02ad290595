// Token shard files: write/read, header checks, and the corpus -> train/val split.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>

#include "framework/core/error.h"
#include "framework/data/token_shard.h"

namespace tessera::data {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("tessera_shard_test_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string expect_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a tessera::Error";
  return "";
}

void write_shard(const fs::path& path, const std::vector<uint32_t>& tokens, int64_t vocab) {
  TokenShardWriter writer(path.string(), vocab);
  writer.append(std::span<const uint32_t>(tokens).subspan(0, tokens.size() / 2));
  writer.append(std::span<const uint32_t>(tokens).subspan(tokens.size() / 2));
  writer.close();
}

TEST(TokenShardTest, WriteThenReadGivesTheSameTokensInBothWidths) {
  const fs::path dir = temp_dir("roundtrip");
  const std::vector<uint32_t> small{0, 1, 65535, 42, 7};
  write_shard(dir / "u16.bin", small, 65536);
  EXPECT_EQ(fs::file_size(dir / "u16.bin"), 32u + 2 * small.size());
  const TokenShard a = TokenShard::open((dir / "u16.bin").string());
  EXPECT_EQ(a.dtype(), TokenDType::u16);
  EXPECT_EQ(a.vocab_size(), 65536);
  EXPECT_EQ(std::vector<uint32_t>(a.tokens().begin(), a.tokens().end()), small);

  const std::vector<uint32_t> big{70000, 0, 99999, 3};
  write_shard(dir / "u32.bin", big, 100000);
  EXPECT_EQ(fs::file_size(dir / "u32.bin"), 32u + 4 * big.size());
  const TokenShard b = TokenShard::open((dir / "u32.bin").string());
  EXPECT_EQ(b.dtype(), TokenDType::u32);
  EXPECT_EQ(std::vector<uint32_t>(b.tokens().begin(), b.tokens().end()), big);
  std::vector<int64_t> window(2);
  b.copy_to(1, 2, window.data());
  EXPECT_EQ(window, (std::vector<int64_t>{0, 99999}));

  const std::string header = read_bytes(dir / "u16.bin").substr(0, 8);
  EXPECT_EQ(header, "TSRATOK1");
  EXPECT_FALSE(fs::exists(dir / "u16.bin.tmp"));
  fs::remove_all(dir);
}

TEST(TokenShardTest, TruncatedFileIsAnErrorNamingTheFile) {
  const fs::path dir = temp_dir("truncated");
  write_shard(dir / "train.bin", {1, 2, 3, 4, 5, 6}, 100);
  const std::string bytes = read_bytes(dir / "train.bin");
  write_bytes(dir / "cut.bin", bytes.substr(0, bytes.size() - 3));
  std::string message = expect_error([&] { TokenShard::open((dir / "cut.bin").string()); });
  EXPECT_NE(message.find((dir / "cut.bin").string()), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  EXPECT_NE(message.find("6 tokens"), std::string::npos) << message;

  write_bytes(dir / "header.bin", bytes.substr(0, 20));
  message = expect_error([&] { TokenShard::open((dir / "header.bin").string()); });
  EXPECT_NE(message.find("header.bin"), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;

  write_bytes(dir / "long.bin", bytes + "xx");
  message = expect_error([&] { TokenShard::open((dir / "long.bin").string()); });
  EXPECT_NE(message.find("long.bin"), std::string::npos) << message;
  EXPECT_NE(message.find("count mismatch"), std::string::npos) << message;
  fs::remove_all(dir);
}

TEST(TokenShardTest, BadMagicIsAnError) {
  const fs::path dir = temp_dir("magic");
  write_shard(dir / "a.bin", {1, 2, 3}, 100);
  std::string bytes = read_bytes(dir / "a.bin");
  bytes[0] = 'X';
  write_bytes(dir / "a.bin", bytes);
  const std::string message = expect_error([&] { TokenShard::open((dir / "a.bin").string()); });
  EXPECT_NE(message.find("a.bin"), std::string::npos) << message;
  EXPECT_NE(message.find("bad magic"), std::string::npos) << message;
  fs::remove_all(dir);
}

TEST(TokenShardTest, TokenIdOutsideTheVocabIsAnError) {
  const fs::path dir = temp_dir("vocab");
  write_shard(dir / "a.bin", {1, 2, 3}, 100);
  std::string bytes = read_bytes(dir / "a.bin");
  bytes[32 + 2 * 2] = static_cast<char>(200);  // token 2 := 200 with vocab 100
  write_bytes(dir / "a.bin", bytes);
  const std::string message = expect_error([&] { TokenShard::open((dir / "a.bin").string()); });
  EXPECT_NE(message.find("a.bin"), std::string::npos) << message;
  EXPECT_NE(message.find("token 2 has id 200, which is >= vocab size 100"), std::string::npos) << message;
  TokenShardWriter writer((dir / "b.bin").string(), 100);
  EXPECT_THROW(writer.append(std::vector<uint32_t>{100}), Error);
  fs::remove_all(dir);
}

TEST(TokenShardTest, UnclosedWriterLeavesNoFile) {
  const fs::path dir = temp_dir("unclosed");
  {
    TokenShardWriter writer((dir / "a.bin").string(), 100);
    writer.append(std::vector<uint32_t>{1, 2});
  }
  EXPECT_FALSE(fs::exists(dir / "a.bin"));
  EXPECT_FALSE(fs::exists(dir / "a.bin.tmp"));
  fs::remove_all(dir);
}

TEST(TokenShardTest, CorpusSplitsWholeDocumentsDeterministically) {
  const fs::path dir = temp_dir("corpus");
  // 20 documents "doc <i>" of two lines; with val fraction 0.1, k = 2 validation documents:
  // block i is held out when floor((i + 1) * 2 / 20) > floor(i * 2 / 20), i.e. i = 9 and 19.
  std::string text;
  for (int i = 0; i < 20; ++i) text += "doc " + std::to_string(i) + "\nline two\n\n\n";
  const Tokenizer tok({}, {std::string(kEndOfText)});  // bytes only: one token per byte
  TokenizeCorpusOptions options;
  options.val_fraction = 0.1;
  const TokenizeCorpusStats stats = tokenize_corpus(tok, text, (dir / "out").string(), options);
  EXPECT_EQ(stats.documents, 20);
  EXPECT_EQ(stats.val_blocks, 2);
  const TokenShard train = TokenShard::open((dir / "out" / "train.bin").string());
  const TokenShard val = TokenShard::open((dir / "out" / "val.bin").string());
  EXPECT_EQ(train.vocab_size(), 257);
  const uint32_t eot = 256;
  const std::vector<uint32_t> val_tokens(val.tokens().begin(), val.tokens().end());
  std::string val_text;
  for (uint32_t id : val_tokens) val_text += id == eot ? std::string("|") : std::string(1, static_cast<char>(id));
  EXPECT_EQ(val_text, "doc 9\nline two\n|doc 19\nline two\n|");
  EXPECT_EQ(stats.train_tokens + stats.val_tokens, train.size() + val.size());
  EXPECT_EQ(std::count(train.tokens().begin(), train.tokens().end(), eot), 18);

  // A second run writes the same bytes.
  tokenize_corpus(tok, text, (dir / "again").string(), options);
  EXPECT_EQ(read_bytes(dir / "out" / "train.bin"), read_bytes(dir / "again" / "train.bin"));
  EXPECT_EQ(read_bytes(dir / "out" / "val.bin"), read_bytes(dir / "again" / "val.bin"));

  // One document cannot be split into train and val.
  EXPECT_NE(expect_error([&] { tokenize_corpus(tok, "only\none\ndocument\n", (dir / "one").string(), options); })
                .find("--val-fraction 0"),
            std::string::npos);
  fs::remove_all(dir);
}

TEST(TokenShardTest, LongDocumentsAreCutIntoBlocksAtLineBoundaries) {
  const fs::path dir = temp_dir("blocks");
  std::string text;
  for (int i = 0; i < 100; ++i) text += "line number " + std::to_string(i) + "\n";
  const Tokenizer tok({}, {std::string(kEndOfText)});
  TokenizeCorpusOptions options;
  options.val_fraction = 0.25;
  options.max_block_bytes = 200;
  const TokenizeCorpusStats stats = tokenize_corpus(tok, text, (dir / "out").string(), options);
  EXPECT_EQ(stats.documents, 1);
  EXPECT_GT(stats.blocks, 5);
  const TokenShard train = TokenShard::open((dir / "out" / "train.bin").string());
  const TokenShard val = TokenShard::open((dir / "out" / "val.bin").string());
  // Every byte of the text lands in exactly one shard; one <|endoftext|> ends the document.
  EXPECT_EQ(train.size() + val.size(), static_cast<int64_t>(text.size()) + 1);
  EXPECT_GT(val.size(), 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tessera::data
