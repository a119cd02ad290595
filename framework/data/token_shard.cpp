// Token shard files (reader, writer) and the corpus -> train/val shards step. Layout and split
// rule: token_shard.h.
#include "framework/data/token_shard.h"

#include <cmath>
#include <cstring>
#include <filesystem>

#include "framework/core/error.h"

namespace tessera::data {

namespace {

void put_u32(unsigned char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void put_u64(unsigned char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
uint32_t get_u32(const unsigned char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t get_u64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

TokenDType token_dtype_for_vocab(int64_t vocab_size) {
  return vocab_size <= 65536 ? TokenDType::u16 : TokenDType::u32;
}

// ---------------------------------------------------------------------------------------------
// Writer

TokenShardWriter::TokenShardWriter(std::string path, int64_t vocab_size)
    : path_(std::move(path)), tmp_path_(path_ + ".tmp"), vocab_size_(vocab_size),
      dtype_(token_dtype_for_vocab(vocab_size)) {
  TESSERA_CHECK(vocab_size > 0 && vocab_size <= UINT32_MAX, "token shard '", path_, "': vocab size ", vocab_size,
                " is out of range");
  file_.open(tmp_path_, std::ios::binary | std::ios::trunc);
  TESSERA_CHECK(file_.good(), "token shard '", path_, "': cannot open '", tmp_path_, "' for writing");
  const char zeros[kTokenShardHeaderBytes] = {};
  file_.write(zeros, kTokenShardHeaderBytes);  // the real header is written by close()
}

TokenShardWriter::~TokenShardWriter() {
  if (!closed_) {
    file_.close();
    std::error_code ec;
    std::filesystem::remove(tmp_path_, ec);
  }
}

void TokenShardWriter::append(std::span<const uint32_t> tokens) {
  TESSERA_CHECK(!closed_, "token shard '", path_, "': append after close");
  const size_t width = static_cast<size_t>(dtype_);
  std::vector<unsigned char> buffer(tokens.size() * width);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const uint32_t id = tokens[i];
    TESSERA_CHECK(id < vocab_size_, "token shard '", path_, "': token id ", id, " is >= vocab size ", vocab_size_);
    for (size_t b = 0; b < width; ++b) buffer[i * width + b] = static_cast<unsigned char>(id >> (8 * b));
  }
  file_.write(reinterpret_cast<const char*>(buffer.data()), static_cast<std::streamsize>(buffer.size()));
  TESSERA_CHECK(file_.good(), "token shard '", path_, "': write failed");
  count_ += static_cast<int64_t>(tokens.size());
}

void TokenShardWriter::close() {
  TESSERA_CHECK(!closed_, "token shard '", path_, "': closed twice");
  unsigned char header[kTokenShardHeaderBytes] = {};
  std::memcpy(header, kTokenShardMagic.data(), 8);
  put_u32(header + 8, kTokenShardVersion);
  put_u32(header + 12, static_cast<uint32_t>(dtype_));
  put_u32(header + 16, static_cast<uint32_t>(vocab_size_));
  put_u64(header + 24, static_cast<uint64_t>(count_));
  file_.seekp(0);
  file_.write(reinterpret_cast<const char*>(header), kTokenShardHeaderBytes);
  file_.close();
  TESSERA_CHECK(file_.good(), "token shard '", path_, "': write failed");
  std::error_code ec;
  std::filesystem::rename(tmp_path_, path_, ec);
  TESSERA_CHECK(!ec, "token shard '", path_, "': cannot rename '", tmp_path_, "' into place: ", ec.message());
  closed_ = true;
}

// ---------------------------------------------------------------------------------------------
// Reader

TokenShard TokenShard::open(const std::string& path) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  TESSERA_CHECK(file.good(), "token shard '", path, "': cannot open it for reading");
  const int64_t file_bytes = static_cast<int64_t>(file.tellg());
  file.seekg(0);
  TESSERA_CHECK(file_bytes >= kTokenShardHeaderBytes, "token shard '", path, "': truncated: ", file_bytes,
                " bytes is shorter than the ", kTokenShardHeaderBytes, "-byte header");
  unsigned char header[kTokenShardHeaderBytes];
  file.read(reinterpret_cast<char*>(header), kTokenShardHeaderBytes);
  TESSERA_CHECK(file.good(), "token shard '", path, "': cannot read the header");
  TESSERA_CHECK(std::memcmp(header, kTokenShardMagic.data(), 8) == 0, "token shard '", path,
                "': bad magic (expected \"TSRATOK1\"; not a Tessera token shard)");
  const uint32_t version = get_u32(header + 8);
  TESSERA_CHECK(version == kTokenShardVersion, "token shard '", path, "': unsupported version ", version,
                " (this build reads version ", kTokenShardVersion, ")");
  const uint32_t width = get_u32(header + 12);
  TESSERA_CHECK(width == 2 || width == 4, "token shard '", path, "': bytes per token is ", width,
                " (expected 2 or 4)");
  const uint32_t vocab = get_u32(header + 16);
  TESSERA_CHECK(vocab > 0, "token shard '", path, "': vocab size is 0");
  TESSERA_CHECK(width == static_cast<uint32_t>(token_dtype_for_vocab(vocab)), "token shard '", path,
                "': ", width, " bytes per token does not match vocab size ", vocab);
  const uint64_t count = get_u64(header + 24);
  const int64_t payload = file_bytes - kTokenShardHeaderBytes;
  TESSERA_CHECK(count <= static_cast<uint64_t>(payload) / width, "token shard '", path,
                "': truncated: the header says ", count, " tokens (", count * width, " bytes) but the file holds only ",
                payload, " bytes of tokens");
  TESSERA_CHECK(static_cast<int64_t>(count * width) == payload, "token shard '", path,
                "': token count mismatch: the header says ", count, " tokens but the file holds ", payload,
                " bytes of tokens (", payload / width, " tokens", payload % width ? " and a partial one" : "", ")");

  std::vector<unsigned char> raw(static_cast<size_t>(payload));
  file.read(reinterpret_cast<char*>(raw.data()), payload);
  TESSERA_CHECK(file.good(), "token shard '", path, "': read failed");
  TokenShard shard;
  shard.path_ = path;
  shard.vocab_size_ = vocab;
  shard.tokens_.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    const unsigned char* p = raw.data() + i * width;
    const uint32_t id = width == 2 ? static_cast<uint32_t>(p[0] | (p[1] << 8)) : get_u32(p);
    TESSERA_CHECK(id < vocab, "token shard '", path, "': token ", i, " has id ", id, ", which is >= vocab size ",
                  vocab);
    shard.tokens_[i] = id;
  }
  return shard;
}

TokenShard TokenShard::from_tokens(std::vector<uint32_t> tokens, int64_t vocab_size, std::string name) {
  TESSERA_CHECK(vocab_size > 0 && vocab_size <= UINT32_MAX, "token shard '", name, "': vocab size ", vocab_size,
                " is out of range");
  for (size_t i = 0; i < tokens.size(); ++i) {
    TESSERA_CHECK(tokens[i] < vocab_size, "token shard '", name, "': token ", i, " has id ", tokens[i],
                  ", which is >= vocab size ", vocab_size);
  }
  TokenShard shard;
  shard.path_ = std::move(name);
  shard.vocab_size_ = vocab_size;
  shard.tokens_ = std::move(tokens);
  return shard;
}

void TokenShard::copy_to(int64_t start, int64_t count, int64_t* dst) const {
  TESSERA_CHECK(start >= 0 && count >= 0 && start + count <= size(), "token shard '", path_, "': range [", start,
                ", ", start + count, ") is outside its ", size(), " tokens");
  for (int64_t i = 0; i < count; ++i) dst[i] = tokens_[static_cast<size_t>(start + i)];
}

// ---------------------------------------------------------------------------------------------
// Corpus -> shards

namespace {

struct Block {
  std::string text;
  bool ends_document;
};

bool is_blank(std::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

// Documents (blank-line separated), each cut into blocks of at most max_bytes at line boundaries
// (a single longer line is a block of its own).
std::vector<Block> split_blocks(std::string_view text, int64_t max_bytes, int64_t& documents) {
  std::vector<Block> blocks;
  std::string current;
  bool in_document = false;
  auto end_document = [&] {
    if (!in_document) return;
    blocks.push_back({std::move(current), true});
    current.clear();
    in_document = false;
    ++documents;
  };
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    const std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (is_blank(line)) {
      end_document();
      continue;
    }
    if (in_document && static_cast<int64_t>(current.size() + line.size() + 1) > max_bytes) {
      blocks.push_back({std::move(current), false});
      current.clear();
    }
    current.append(line);
    current.push_back('\n');
    in_document = true;
  }
  end_document();
  return blocks;
}

}  // namespace

TokenizeCorpusStats tokenize_corpus(const Tokenizer& tokenizer, std::string_view text, const std::string& out_dir,
                                    const TokenizeCorpusOptions& options) {
  TESSERA_CHECK(options.val_fraction >= 0.0 && options.val_fraction < 1.0, "data tokenize: --val-fraction ",
                options.val_fraction, " must be in [0, 1)");
  TESSERA_CHECK(options.max_block_bytes > 0, "data tokenize: max_block_bytes must be positive");
  TokenizeCorpusStats stats;
  const std::vector<Block> blocks = split_blocks(text, options.max_block_bytes, stats.documents);
  const int64_t n = static_cast<int64_t>(blocks.size());
  TESSERA_CHECK(n > 0, "data tokenize: the input has no text (only blank lines)");
  stats.blocks = n;
  int64_t k = 0;
  if (options.val_fraction > 0.0) {
    k = std::max<int64_t>(1, std::llround(static_cast<double>(n) * options.val_fraction));
    TESSERA_CHECK(k < n, "data tokenize: the input has ", n, " block(s) (documents are separated by blank lines), ",
                  "too few to hold out ", k, " for validation; add documents or use --val-fraction 0");
  }
  stats.val_blocks = k;

  const uint32_t eot = tokenizer.special_id(kEndOfText);
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  TESSERA_CHECK(!ec, "data tokenize: cannot create output directory '", out_dir, "': ", ec.message());
  TokenShardWriter train((std::filesystem::path(out_dir) / "train.bin").string(), tokenizer.vocab_size());
  TokenShardWriter val((std::filesystem::path(out_dir) / "val.bin").string(), tokenizer.vocab_size());
  std::vector<uint32_t> ids;
  for (int64_t i = 0; i < n; ++i) {
    const bool is_val = k > 0 && ((i + 1) * k) / n > (i * k) / n;
    ids.clear();
    tokenizer.encode_append(blocks[i].text, ids);
    if (blocks[i].ends_document) ids.push_back(eot);
    (is_val ? val : train).append(ids);
    stats.text_bytes += static_cast<int64_t>(blocks[i].text.size());
  }
  stats.train_tokens = train.count();
  stats.val_tokens = val.count();
  train.close();
  val.close();
  return stats;
}

}  // namespace tessera::data
