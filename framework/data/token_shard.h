// Token shards: a flat file of token ids for language-model training, and the step that turns a
// text corpus into train/validation shards.
//
// defines: tessera::data::TokenShard, TokenShardWriter, TokenDType, token_dtype_for_vocab,
//          kTokenShardMagic, kTokenShardHeaderBytes, TokenizeCorpusOptions, TokenizeCorpusStats,
//          tokenize_corpus
//
// File layout (little-endian, 32-byte header, then the tokens):
//   offset  0  char[8]  magic "TSRATOK1"
//   offset  8  u32      version (1)
//   offset 12  u32      bytes per token: 2 (u16, vocab <= 65536) or 4 (u32)
//   offset 16  u32      vocab size (every token id is < this)
//   offset 20  u32      reserved, 0
//   offset 24  u64      token count
//   offset 32  tokens   count * bytes-per-token
// Readers check all of it: a wrong magic, an unknown version or width, a file shorter or longer
// than the header says, or an id >= vocab size is an error naming the file.
//
// tokenize_corpus splits the text into blocks: documents are separated by blank lines, and a
// document longer than max_block_bytes is cut at line boundaries into several blocks. Each block
// goes wholly to train.bin or val.bin: with k = max(1, round(blocks * val_fraction)) validation
// blocks, block i is a validation block when floor((i + 1) * k / blocks) > floor(i * k / blocks),
// i.e. every (blocks / k)-th block, spread over the whole corpus and the same on every run. A
// block's text is its lines, each ending in '\n'; <|endoftext|> follows the last block of each
// document (the blank-line separators themselves are not encoded).
#pragma once

#include <cstdint>
#include <fstream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "framework/data/tokenizer.h"

namespace tessera::data {

inline constexpr std::string_view kTokenShardMagic = "TSRATOK1";
inline constexpr int64_t kTokenShardHeaderBytes = 32;
inline constexpr uint32_t kTokenShardVersion = 1;

enum class TokenDType : uint32_t { u16 = 2, u32 = 4 };  // value = bytes per token
TokenDType token_dtype_for_vocab(int64_t vocab_size);

// Streams tokens into `path` (through `path`.tmp, renamed into place by close()). A writer
// destroyed without close() removes its temporary file.
class TokenShardWriter {
 public:
  TokenShardWriter(std::string path, int64_t vocab_size);
  ~TokenShardWriter();
  TokenShardWriter(const TokenShardWriter&) = delete;
  TokenShardWriter& operator=(const TokenShardWriter&) = delete;

  void append(std::span<const uint32_t> tokens);  // every id must be < vocab size
  int64_t count() const { return count_; }
  void close();

 private:
  std::string path_;
  std::string tmp_path_;
  int64_t vocab_size_;
  TokenDType dtype_;
  int64_t count_ = 0;
  std::ofstream file_;
  bool closed_ = false;
};

// A shard read fully into memory and validated.
class TokenShard {
 public:
  static TokenShard open(const std::string& path);
  // An in-memory shard (tests, small corpora); ids are checked against vocab_size.
  static TokenShard from_tokens(std::vector<uint32_t> tokens, int64_t vocab_size, std::string name = "<memory>");

  const std::string& path() const { return path_; }
  int64_t vocab_size() const { return vocab_size_; }
  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  TokenDType dtype() const { return token_dtype_for_vocab(vocab_size_); }
  uint32_t operator[](int64_t i) const { return tokens_[static_cast<size_t>(i)]; }
  std::span<const uint32_t> tokens() const { return tokens_; }
  // Writes tokens [start, start + count) as int64 to dst; the range must lie inside the shard.
  void copy_to(int64_t start, int64_t count, int64_t* dst) const;

 private:
  std::string path_;
  int64_t vocab_size_ = 0;
  std::vector<uint32_t> tokens_;
};

struct TokenizeCorpusOptions {
  double val_fraction = 0.05;        // share of blocks that go to val.bin; 0 writes an empty val.bin
  int64_t max_block_bytes = 1 << 16;  // longer documents are cut into blocks at line boundaries
};

struct TokenizeCorpusStats {
  int64_t documents = 0;
  int64_t blocks = 0;
  int64_t val_blocks = 0;
  int64_t train_tokens = 0;
  int64_t val_tokens = 0;
  int64_t text_bytes = 0;  // bytes of text encoded (without the blank-line separators)
};

// Encodes `text` and writes out_dir/train.bin and out_dir/val.bin (creating out_dir).
TokenizeCorpusStats tokenize_corpus(const Tokenizer& tokenizer, std::string_view text, const std::string& out_dir,
                                    const TokenizeCorpusOptions& options = {});

}  // namespace tessera::data
